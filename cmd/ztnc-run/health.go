package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// healthJSON is the body of /healthz.
type healthJSON struct {
	OK       bool                `json:"ok"`
	Reasons  []string            `json:"reasons"`
	Networks []healthNetworkJSON `json:"networks"`
}

type healthNetworkJSON struct {
	NWID              string   `json:"nwid"`
	Status            string   `json:"status"`
	AssignedAddresses []string `json:"assignedAddresses"`
}

// healthRoutes adds /healthz and /metrics to mux.
func (in *instance) healthRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ok, reasons := in.health()
		h := healthJSON{OK: ok, Reasons: reasons, Networks: []healthNetworkJSON{}}
		if h.Reasons == nil {
			h.Reasons = []string{}
		}
		for _, n := range in.networks() {
			h.Networks = append(h.Networks, healthNetworkJSON{n.NWID, n.Status, n.AssignedAddresses})
		}
		status := http.StatusOK
		if !ok {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, h)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(in.metrics())
	})
}

// healthServer serves /healthz and /metrics over TCP on the host (--health).
type healthServer struct {
	srv *http.Server
	ln  net.Listener
}

// serveHealth listens on addr (HOST:PORT) at once, so that /healthz answers 503 while the
// networks come up.
func serveHealth(log *slog.Logger, addr string, in *instance) (*healthServer, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("--health %q: want ADDRESS:PORT, like 127.0.0.1:9002 or [::]:9002", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--health: %w", err)
	}
	mux := http.NewServeMux()
	in.healthRoutes(mux)
	h := &healthServer{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}}
	go h.srv.Serve(ln)
	log.Info("health and metrics", "url", "http://"+ln.Addr().String()+"/healthz")
	return h, nil
}

func (h *healthServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	h.srv.Shutdown(ctx)
}
