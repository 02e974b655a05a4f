// Package notify is the seccomp user-notification layer: it builds and installs the filter that
// traps a program's socket-API system calls, hands the listener to the supervising process,
// receives and answers notifications, injects file descriptors into the trapped process and
// reads and writes its memory.
package notify
