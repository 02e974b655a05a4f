// Package supervisor emulates the socket API for supervised programs: it answers their trapped
// socket system calls and swaps in file descriptors whose other ends are served by a netstack.
package supervisor
