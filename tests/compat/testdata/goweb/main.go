// Command goweb is the static Go entry's server and client (the test builds it with
// CGO_ENABLED=0):
//
//	goweb serve HOST:PORT FILE    GET /blob the file; POST /sha256 the SHA-256 (hex) of the
//	                              body; GET /peer "peer=<address>"
//	goweb fetch BASE-URL UPLOAD   /blob eight times at once, UPLOAD to /sha256, /peer; prints
//	                              "blob <sha256>", "upload <sha256>", "peer=<address>"
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

func main() {
	var err error
	switch {
	case len(os.Args) == 4 && os.Args[1] == "serve":
		err = serve(os.Args[2], os.Args[3])
	case len(os.Args) == 4 && os.Args[1] == "fetch":
		err = fetch(os.Args[2], os.Args[3])
	default:
		err = fmt.Errorf("usage: goweb serve HOST:PORT FILE | fetch BASE-URL UPLOAD")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "goweb:", err)
		os.Exit(1)
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func serve(addr, file string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /blob", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, file) })
	mux.HandleFunc("POST /sha256", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, sum(b))
	})
	mux.HandleFunc("GET /peer", func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "peer=%s\n", host)
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening on", l.Addr())
	return http.Serve(l, mux)
}

func fetch(base, upload string) error {
	client := &http.Client{Timeout: 60 * time.Second}
	get := func(path string) ([]byte, error) {
		resp, err := client.Get(base + path)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return io.ReadAll(resp.Body)
	}
	sums := make([]string, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range sums {
		wg.Go(func() {
			var b []byte
			b, errs[i] = get("/blob")
			sums[i] = sum(b)
		})
	}
	wg.Wait()
	for i := range sums {
		if errs[i] != nil {
			return errs[i]
		}
		fmt.Println("blob", sums[i])
	}
	body, err := os.ReadFile(upload)
	if err != nil {
		return err
	}
	resp, err := client.Post(base+"/sha256", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		return err
	}
	echoed, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /sha256: %v %s", err, resp.Status)
	}
	fmt.Println("upload", string(echoed))
	peer, err := get("/peer")
	if err != nil {
		return err
	}
	os.Stdout.Write(peer)
	return nil
}
