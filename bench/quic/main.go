// Command quic is an HTTP/3 server and client (quic-go) for bench/quic.sh: the client
// downloads a 20 MB file from the server several times and prints each download's time and
// SHA-256, which must be the server's. quic-go sends every packet with sendmsg and control
// messages on an unconnected socket, and bursts with UDP_SEGMENT: the path of ztnc-run's
// trapped datagram calls.
//
//	quic server ADDR:PORT
//	quic client ADDR:PORT [DOWNLOADS]
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/quic-go/quic-go/http3"
)

const fileSize = 20 << 20

func main() {
	if len(os.Args) < 3 {
		log.Fatal("usage: quic server|client ADDR:PORT [DOWNLOADS]")
	}
	switch os.Args[1] {
	case "server":
		serve(os.Args[2])
	case "client":
		n := 3
		if len(os.Args) > 3 {
			n, _ = strconv.Atoi(os.Args[3])
		}
		if err := fetch(os.Args[2], n); err != nil {
			log.Fatal(err)
		}
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
}

// file is the served file: the same bytes in server and client (a fixed seed).
func file() []byte {
	b := make([]byte, fileSize)
	r := mrand.NewChaCha8([32]byte{42})
	r.Read(b)
	return b
}

func serve(addr string) {
	data := file()
	mux := http.NewServeMux()
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "file", time.Time{}, bytes.NewReader(data))
	})
	srv := &http3.Server{Addr: addr, Handler: mux, TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{selfSigned()}})}
	log.Fatal(srv.ListenAndServe())
}

func fetch(addr string, n int) error {
	want := sha256.Sum256(file())
	tr := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.Close()
	c := &http.Client{Transport: tr, Timeout: time.Minute}
	for i := range n {
		start := time.Now()
		r, err := c.Get("https://" + addr + "/file")
		if err != nil {
			return err
		}
		h := sha256.New()
		got, err := io.Copy(h, r.Body)
		r.Body.Close()
		if err != nil {
			return err
		}
		if sum := h.Sum(nil); got != fileSize || !bytes.Equal(sum, want[:]) {
			return fmt.Errorf("download %d: %d bytes, sha256 %s", i, got, hex.EncodeToString(sum))
		}
		fmt.Printf("download %d: %.3f s\n", i, time.Since(start).Seconds())
	}
	return nil
}

func selfSigned() tls.Certificate {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	t := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"bench"}}
	der, err := x509.CreateCertificate(rand.Reader, t, t, &k.PublicKey, k)
	if err != nil {
		log.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}
