// Package agent runs programs for the compatibility matrix from inside a placement. An agent
// process is started wherever an entry's server or client must run — on the host, in a network
// namespace, under ztnc-run — and every program it starts inherits that network. The harness
// drives it over the agent's stdin and stdout, so the channel works through any wrapper that
// passes standard I/O on (ip netns exec, ztnc-run).
//
// The protocol is JSON lines: requests on the agent's stdin, events on its stdout, each event
// line starting with Marker so that anything else a wrapper prints there is told apart. When
// its stdin closes the agent ends what it started (SIGTERM, then SIGKILL) and exits.
package agent

import "time"

// Marker starts every event line the agent writes.
const Marker = "@ztnc-compat-agent "

// Operations a Request asks for.
const (
	OpStart  = "start"  // start Argv; events: started (or error), later exited
	OpSignal = "signal" // send Signal to the process group of request Target; no event
	OpDial   = "dial"   // connect to Addr over TCP until it works or Timeout passes; event: dialed or error
)

// Kinds of Event.
const (
	EventReady   = "ready"   // the agent runs and reads requests (ID 0)
	EventStarted = "started" // Pid is the process (and process group) started
	EventExited  = "exited"  // the process exited: Code, or Signal when a signal ended it
	EventDialed  = "dialed"  // a TCP connection to Addr succeeded
	EventError   = "error"   // the request failed: Error
)

// Request is one line on the agent's stdin.
type Request struct {
	ID uint64 `json:"id"`
	Op string `json:"op"`

	// OpStart. Env is added to the agent's own environment. Stdin, Stdout and Stderr are
	// files ("" means /dev/null). Creds runs the program as another user (the agent must be
	// root).
	Argv   []string `json:"argv,omitempty"`
	Env    []string `json:"env,omitempty"`
	Dir    string   `json:"dir,omitempty"`
	Creds  *Creds   `json:"creds,omitempty"`
	Stdin  string   `json:"stdin,omitempty"`
	Stdout string   `json:"stdout,omitempty"`
	Stderr string   `json:"stderr,omitempty"`

	// OpSignal.
	Target uint64 `json:"target,omitempty"`
	Signal int    `json:"signal,omitempty"`

	// OpDial.
	Addr    string        `json:"addr,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
}

// Creds are the user and groups a program runs as.
type Creds struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

// Event is one line on the agent's stdout, after Marker.
type Event struct {
	ID     uint64 `json:"id"`
	Kind   string `json:"kind"`
	Pid    int    `json:"pid,omitempty"`
	Code   int    `json:"code,omitempty"`
	Signal int    `json:"signal,omitempty"`
	Error  string `json:"error,omitempty"`
}
