package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

var (
	// startupRuns is how many cold starts of the ztnc-self pairs' member B are measured per
	// kind of home (-startup-runs).
	startupRuns = 5
	// ztncProfileDir, if set, makes every program run by a ztnc-run member write a CPU profile
	// there (-ztnc-cpuprofile).
	ztncProfileDir string
	// ztncFlags are added to every ztnc-run member's command line (-ztnc-flags).
	ztncFlags []string
)

// restartGap separates the measured starts of B.
const restartGap = 1500 * time.Millisecond

// Where the ztnc-self pairs' controller runs (the root is at lab.LabRootAddr, A and B where the
// other pairs' members are).
const ztncCtlAddr = "192.0.2.3"

// ztncSelfPair is the self-hosted set-up with the ztnc-run binary at *bin (a flag, read when
// the pair runs): our root and controller (ztnc-run root / controller) and ztnc-run members
// A and B; B's cold starts are measured first, with fresh and with cached homes.
func ztncSelfPair(name string, bin *string, flagName, about string, reference bool) pair {
	return pair{
		name:      name,
		reference: reference,
		about:     about,
		bin:       bin,
		available: func() string { return binaryMissing(*bin, flagName) },
		setup: func(t lab.T) (*lab.Endpoint, *lab.Endpoint, *startup) {
			bin, err := filepath.Abs(*bin)
			if err != nil {
				t.Fatalf("%v", err)
			}
			l := lab.New(t, lab.Config{})
			planet := lab.StartZtncRoot(t, bin, l.AddHost("root", lab.LabRootAddr), lab.Identity(5))
			ctrl := lab.StartZtncController(t, bin, l.AddHost("ctl", ztncCtlAddr), lab.Identity(6), planet)
			nw, err := ctrl.CreateNetwork(context.Background(), lab.NewNetwork("bench", ztSubnet))
			if err != nil {
				t.Fatalf("%v", err)
			}
			member := func(host *lab.Host, identity string) *lab.ZtncMember {
				home := lab.NewHome(t)
				home.SetIdentity(t, identity)
				home.SetPlanet(t, planet)
				if err := ctrl.Authorize(context.Background(), nw.ID, home.Address()); err != nil {
					t.Fatalf("%v", err)
				}
				m := lab.StartZtncMember(t, bin, host, home, nw.ID, time.Minute)
				m.Wrap = memberWrap(name, host, m.Wrap)
				return m
			}
			a := member(l.AddHost("a", memberAAddr), lab.Identity(2)).WaitNetwork(t, nw.ID, time.Minute)
			mb := member(l.AddHost("b", memberBAddr), lab.Identity(3))
			st := ztncStartup(t, name, a, mb, nw.ID)
			return a, mb.WaitNetwork(t, nw.ID, time.Minute), st
		},
	}
}

var profileSeq atomic.Int64

// memberWrap returns wrap (a ztnc-run member's wrapper of pair pairName on host h) with the
// -ztnc-flags added and, when -ztnc-cpuprofile asks for it, a CPU profile written per program
// run, named <pair>-<host>-<n>-<program>.prof.
func memberWrap(pairName string, h *lab.Host, wrap func(nwid string, argv []string) []string) func(string, []string) []string {
	return func(nwid string, argv []string) []string {
		w := wrap(nwid, argv)
		extra := slices.Clone(ztncFlags)
		if ztncProfileDir != "" {
			name := fmt.Sprintf("%s-%s-%d-%s.prof", pairName, h.Name, profileSeq.Add(1), filepath.Base(argv[0]))
			extra = append(extra, "--cpuprofile", filepath.Join(ztncProfileDir, name))
		}
		// ztnc-run's own flags go right after the binary, before the program's argv.
		return append(append([]string{w[0]}, extra...), w[1:]...)
	}
}

// ztncStartup serves a file on a and times `ztnc-run -- curl` on b: startupRuns times with a
// fresh home (identity and planet only), then startupRuns times with the home the previous
// run left (cached network config and peers).
func ztncStartup(t lab.T, pairName string, a *lab.Endpoint, b *lab.ZtncMember, nwid string) *startup {
	url, httpd := serveHello(t, a)
	defer httpd.Stop()
	if err := b.WaitNetwork(t, nwid, time.Minute).WaitTCP(t, a.Addr, 8000, 30*time.Second); err != nil {
		t.Fatalf("%v", err)
	}
	st := &startup{}
	for i := range 2 * startupRuns {
		// A node restarted within a second of its previous run meets rate limits: the
		// controller ignores a member's requests less than 1 s apart (as zerotier-one's
		// does), and peers push their credentials again at most once a second. Users do not
		// restart that fast; the gap keeps the measurement about start-up.
		time.Sleep(restartGap)
		fresh := i < startupRuns
		if fresh {
			for _, p := range []string{b.Home.Path("networks.d"), b.Home.Path("peers.d")} {
				if err := os.RemoveAll(p); err != nil {
					t.Fatalf("%v", err)
				}
			}
		}
		argv := b.Host.Argv(b.Wrap(nwid, []string{"curl", "-sS", "--max-time", "20", url})...)
		ok, first, err := timeStart(argv)
		if err != nil {
			t.Fatalf("%s pair: cold start %d: %v", pairName, i+1, err)
		}
		t.Logf("%s pair: B start %d (fresh %v): network OK %v, first byte %v", pairName, i+1, fresh, ok, first)
		if fresh {
			st.toOK, st.toFirstByte = append(st.toOK, ok), append(st.toFirstByte, first)
		} else {
			st.cachedToOK, st.cachedToFirstByte = append(st.cachedToOK, ok), append(st.cachedToFirstByte, first)
		}
	}
	return st
}

var statusOKLine = regexp.MustCompile(`msg="network status" .*status=OK`)

// timeStart runs argv (ztnc-run with a client program) and returns the times from its start
// to ztnc-run's status=OK line on stderr and to the first byte of the program's stdout.
func timeStart(argv []string) (toOK, toFirstByte time.Duration, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	okc := make(chan time.Duration, 1)
	var log []byte
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if statusOKLine.Match(sc.Bytes()) {
				select {
				case okc <- time.Since(start):
				default:
				}
			}
			log = append(append(log, sc.Bytes()...), '\n')
		}
		close(okc)
	}()
	var b [1]byte
	if _, err := io.ReadFull(stdout, b[:]); err == nil {
		toFirstByte = time.Since(start)
	}
	io.Copy(io.Discard, stdout)
	toOK = <-okc
	if err := cmd.Wait(); err != nil {
		return 0, 0, fmt.Errorf("%s: %v\n%s", lab.Quote(argv), err, log)
	}
	if toOK == 0 || toFirstByte == 0 {
		return 0, 0, fmt.Errorf("%s: no status=OK line or no output\n%s", lab.Quote(argv), log)
	}
	return toOK, toFirstByte, nil
}
