package main

// The control socket: a running ztnc-run with a node serves an HTTP API on a unix socket in
// its home (HOME/ztnc.sock, mode 0600, its owner's uid and root only), with zerotier-one's
// paths and JSON shapes:
//
//	GET    /status          node: address, online, version, ... (zerotier-cli info -j)
//	GET    /network         joined networks (zerotier-cli listnetworks -j)
//	GET    /network/{nwid}  one network
//	POST   /network/{nwid}  join (zerotier-cli join)
//	DELETE /network/{nwid}  leave (zerotier-cli leave)
//	GET    /peer            peers (zerotier-cli listpeers -j)
//	POST   /attach          supervise a program started by ztnc-run attach (see attachserve.go)
//	GET    /healthz         200 once every network is OK with an address, 503 before
//	GET    /metrics         Prometheus text format
//
// Errors are {"error": "..."} with a 4xx/5xx status. The home is locked (flock on the home
// directory) for the life of the process: a second ztnc-run on the same home is refused,
// since the node's identity and state live there; the socket and HOME/ztnc.pid belong to
// the lock holder, so a socket left by a dead process is replaced, a live one never.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ztnc/ztnc/zt/ztaddr"
)

const (
	controlSocketFile = "ztnc.sock"
	pidFileName       = "ztnc.pid"
	// controlHost is the host name in control URLs (any name works: the socket is the address).
	controlHost = "ztnc"
)

// homeLock is a home held by this process.
type homeLock struct {
	dir  *os.File // the home directory, flocked
	home string
}

// lockHome takes the home for this process, creating it if needed, and writes HOME/ztnc.pid.
func lockHome(home string) (*homeLock, error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("home: %w", err)
	}
	dir, err := os.Open(home)
	if err != nil {
		return nil, fmt.Errorf("home: %w", err)
	}
	if err := unix.Flock(int(dir.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		dir.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := "another process"
			if b, err := os.ReadFile(filepath.Join(home, pidFileName)); err == nil && len(strings.TrimSpace(string(b))) > 0 {
				holder = "pid " + strings.TrimSpace(string(b))
			}
			return nil, fmt.Errorf("home %s is in use by another ztnc-run (%s): a home holds one node's identity and state, so give each instance its own --home (or use that instance: ztnc-run status --home %s)", home, holder, home)
		}
		return nil, fmt.Errorf("lock home %s: %w", home, err)
	}
	l := &homeLock{dir: dir, home: home}
	if err := writeNewFile(l.path(pidFileName), strconv.Itoa(os.Getpid())+"\n", 0o644); err != nil {
		l.release()
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return l, nil
}

func (l *homeLock) path(name string) string { return filepath.Join(l.home, name) }

// release removes the pid file and the socket, then lets the home go.
func (l *homeLock) release() {
	os.Remove(l.path(controlSocketFile))
	os.Remove(l.path(pidFileName))
	l.dir.Close()
}

// maxSocketPath is the longest path a sockaddr_un holds (108 bytes with the final NUL).
const maxSocketPath = 107

// socketPath returns a path that reaches name in dir for bind and connect: the path itself,
// or, when it is too long for a sockaddr_un, the same file through an open directory
// descriptor (/proc/self/fd/N/name); close releases that descriptor.
func socketPath(dir, name string) (path string, close func(), err error) {
	path = filepath.Join(dir, name)
	if len(path) <= maxSocketPath {
		return path, func() {}, nil
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", fd, name), func() { unix.Close(fd) }, nil
}

// controlServer serves the control API of an instance on the home's socket.
type controlServer struct {
	srv *http.Server
	ln  net.Listener
}

// serveControl listens on HOME/ztnc.sock (the home is locked by l) and serves h there.
func serveControl(log *slog.Logger, l *homeLock, h http.Handler) (*controlServer, error) {
	final := l.path(controlSocketFile)
	// Whatever is there was left by a process that no longer holds the home.
	if err := os.Remove(final); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// Bound under a temporary name, restricted, then renamed: never reachable with the
	// umask's mode.
	tmpName := fmt.Sprintf("%s.%d.tmp", controlSocketFile, os.Getpid())
	path, closeDir, err := socketPath(l.home, tmpName)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer closeDir()
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	tmp := l.path(tmpName)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("control socket: %w", err)
	}
	c := &controlServer{
		ln: ln,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				return context.WithValue(ctx, peerConnKey{}, c)
			},
		},
	}
	go c.srv.Serve(ownerOnly{ln.(*net.UnixListener), log})
	log.Debug("control socket", "path", final)
	return c, nil
}

func (c *controlServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.srv.Shutdown(ctx)
	c.ln.Close()
}

// ownerOnly accepts connections from processes of the socket's owner (and root) only. The
// socket's mode already says so; this also holds for a home on a file system that ignores
// modes.
type ownerOnly struct {
	*net.UnixListener
	log *slog.Logger
}

func (o ownerOnly) Accept() (net.Conn, error) {
	for {
		c, err := o.AcceptUnix()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c)
		if err == nil && (uid == os.Geteuid() || uid == 0) {
			return c, nil
		}
		o.log.Warn("control socket: connection refused", "uid", uid, "err", err)
		go refuse(c, fmt.Sprintf("uid %d may not use this ztnc-run: only its owner (uid %d) and root may", uid, os.Geteuid()))
	}
}

// refuse answers a connection's request with 403 and msg, so that the client says why; the
// request is read first, so that writing it does not fail.
func refuse(c net.Conn, msg string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if req, err := http.ReadRequest(bufio.NewReader(io.LimitReader(c, 64<<10))); err == nil {
		io.Copy(io.Discard, req.Body)
	}
	b, _ := json.Marshal(map[string]string{"error": msg})
	fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(b), b)
}

// peerConnKey keys a request's connection in its context.
type peerConnKey struct{}

// peerPID is the pid of the process that made a request (SO_PEERCRED), or 0.
func peerPID(r *http.Request) int {
	c, _ := r.Context().Value(peerConnKey{}).(*net.UnixConn)
	if c == nil {
		return 0
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	pid := 0
	rc.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			pid = int(cred.Pid)
		}
	})
	return pid
}

func peerUID(c *net.UnixConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if cerr != nil {
		return -1, cerr
	}
	return int(cred.Uid), nil
}

// writeJSON answers with v as indented JSON (zerotier-one indents its answers too).
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// apiError is a failed request, answered as {"error": msg}.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{http.StatusInternalServerError, err.Error()}
	}
	writeJSON(w, ae.status, map[string]string{"error": ae.msg})
}

// controlClient talks to the instance of a home.
type controlClient struct {
	home string
	http *http.Client
}

func newControlClient(home string) *controlClient {
	return &controlClient{home: home, http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			path, closeDir, err := socketPath(home, controlSocketFile)
			if err != nil {
				return nil, err
			}
			defer closeDir()
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

// errNoInstance: nothing serves the home's control socket.
type errNoInstance struct {
	home string
	err  error
}

func (e *errNoInstance) Error() string {
	if errors.Is(e.err, unix.EACCES) {
		return fmt.Sprintf("cannot reach the ztnc-run of home %s (%s: %v): only the home's owner and root may", e.home, filepath.Join(e.home, controlSocketFile), e.err)
	}
	return fmt.Sprintf("no ztnc-run is running with home %s (%s: %v)", e.home, filepath.Join(e.home, controlSocketFile), e.err)
}

// do sends a request and decodes a 200 answer's JSON into out. Other statuses become errors
// carrying the status code and the API's message.
func (c *controlClient) do(method, path string, out any) error {
	req, err := http.NewRequest(method, "http://"+controlHost+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return &errNoInstance{c.home, op.Err}
		}
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &apiError{resp.StatusCode, e.Error}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], b...)
		return nil
	}
	return json.Unmarshal(b, out)
}

// handler is the control API of an instance.
func (in *instance) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, in.status())
	})
	mux.HandleFunc("GET /network", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, in.networks())
	})
	mux.HandleFunc("GET /network/{nwid}", func(w http.ResponseWriter, r *http.Request) {
		id, err := pathNetworkID(r)
		if err != nil {
			writeError(w, err)
			return
		}
		n, err := in.network(id.String())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, n)
	})
	mux.HandleFunc("POST /network/{nwid}", func(w http.ResponseWriter, r *http.Request) {
		id, err := pathNetworkID(r)
		if err == nil {
			var n networkJSON
			if n, err = in.join(id); err == nil {
				writeJSON(w, http.StatusOK, n)
				return
			}
		}
		writeError(w, err)
	})
	mux.HandleFunc("DELETE /network/{nwid}", func(w http.ResponseWriter, r *http.Request) {
		id, err := pathNetworkID(r)
		if err == nil {
			if err = in.leave(id); err == nil {
				writeJSON(w, http.StatusOK, map[string]bool{"result": true})
				return
			}
		}
		writeError(w, err)
	})
	mux.HandleFunc("GET /peer", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, in.peers())
	})
	mux.HandleFunc("POST /attach", func(w http.ResponseWriter, r *http.Request) {
		in.mu.Lock()
		at := in.attach
		in.mu.Unlock()
		if at == nil {
			writeError(w, &apiError{http.StatusNotImplemented, "this ztnc-run runs no programs: nothing can attach to it"})
			return
		}
		at.serveHTTP(w, r)
	})
	in.healthRoutes(mux)
	return mux
}

// pathNetworkID parses the {nwid} of a request's path.
func pathNetworkID(r *http.Request) (ztaddr.NetworkID, error) {
	s := r.PathValue("nwid")
	id, err := ztaddr.ParseNetworkID(s)
	if err != nil || id == 0 || len(s) != 16 {
		return 0, &apiError{http.StatusBadRequest, fmt.Sprintf("invalid network id %q: want 16 hex digits", s)}
	}
	return id, nil
}
