package host

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// TestService: the 2015 beta's workflow. A `ztnc-run service` joins a network of our
// controller; a server attached to it is reached by a client attached later (through the
// virtual address and 127.0.0.1), by a plain `ztnc-run -- CMD` with the beta's variables
// (ZTNC_HOME and ZT_NC_NWID, or ZT_NC_NETWORK), by
// another member, and from the host through the service's published port; attach passes exit statuses and signals; only the home's owner may
// attach or join; leaving the network takes it from the running programs; SIGTERM to the
// service ends the attached programs and the service.
func TestService(t *testing.T) {
	need(t, "python3", "curl", "setpriv")
	s := startSelfHosted(t)
	nwid := s.network(t, "service")
	home, flags := s.member(t, 2)
	m2Home, m2Flags := s.member(t, 3)
	svcAddr, m2Addr := netip.MustParseAddr("203.0.113.20"), netip.MustParseAddr("203.0.113.30")
	for _, m := range []struct {
		node string
		addr netip.Addr
	}{{home.Address(), svcAddr}, {m2Home.Address(), m2Addr}} {
		if err := s.ctl.Authorize(t.Context(), nwid, m.node, m.addr); err != nil {
			t.Fatal(err)
		}
	}
	attach := func(args ...string) result {
		t.Helper()
		return runZtnc(t, 60*time.Second, nil, append([]string{"attach", "--home", home.Dir, "--"}, args...)...)
	}

	// --isolate: once the network is left, its addresses must not go out to the host's
	// network (fall-through would send them there); it reaches the attached programs too.
	// -p publishes the attached server's port on the host.
	pubPort := lab.FreePort(t)
	svc := ztnc(t, "service", nil, append([]string{"service", "--isolate", "-p", fmt.Sprintf("127.0.0.1:%d:8080", pubPort)}, flags...)...)
	waitFor(t, svc, "the service's control socket", 30*time.Second, func() error {
		if r := cli(t, nil, "status", "--home", home.Dir); r.Code != 0 {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
	if pid, _ := os.ReadFile(home.Path("ztnc.pid")); strings.TrimSpace(string(pid)) != fmt.Sprint(svc.Pid()) {
		t.Errorf("ztnc.pid holds %q, want %d", pid, svc.Pid())
	}
	r := runZtnc(t, 30*time.Second, nil, append([]string{"service"}, flags...)...)
	if want := fmt.Sprintf("ztnc-run: home %s is in use by another ztnc-run (pid %d)", home.Dir, svc.Pid()); r.Code != 125 || !strings.HasPrefix(r.Stderr, want) {
		t.Errorf("second service on the home: want exit 125 and %q\n%s", want, r)
	}
	if r := attach("true"); r.Code != 125 || !strings.Contains(r.Stderr, "no network joined") {
		t.Errorf("attach before any network: %s", r)
	}

	if r := cli(t, nil, "join", nwid, "--home", home.Dir); r.Code != 0 || r.Stdout != "200 join OK\n" {
		t.Fatalf("join: %s", r)
	}
	waitFor(t, svc, "the network OK with its address", 60*time.Second, func() error {
		var nets []networkJSON
		if r := cli(t, &nets, "listnetworks", "-j", "--home", home.Dir); r.Code != 0 || len(nets) != 1 {
			return fmt.Errorf("%s", r)
		}
		if nets[0].Status != "OK" || !slices.Contains(nets[0].AssignedAddresses, svcAddr.String()+"/24") {
			return fmt.Errorf("network %+v", nets[0])
		}
		return nil
	})

	// The server, attached; a client attached later reaches it both ways.
	site := t.TempDir()
	os.WriteFile(filepath.Join(site, "index.html"), []byte("from the service\n"), 0o644)
	srv := ztnc(t, "server", nil, "attach", "--home", home.Dir, "--", "python3", "-m", "http.server", "8080", "--directory", site)
	waitFor(t, srv, "the attached server", 30*time.Second, func() error {
		if r := attach("curl", "-fsS", "http://"+svcAddr.String()+":8080/"); r.Code != 0 || r.Stdout != "from the service\n" {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
	if r := attach("curl", "-fsS", "http://127.0.0.1:8080/"); r.Code != 0 || r.Stdout != "from the service\n" {
		t.Errorf("attached client to 127.0.0.1: %s", r)
	}
	// Every attached program gets its own supervisor in the service; once it has ended, the
	// service holds no more file descriptors than before (each left two eventfds behind).
	fdsBefore := openFDs(t, svc.Pid())
	for range 30 {
		if r := attach("curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/"); r.Code != 0 {
			t.Fatalf("attached client: %s", r)
		}
	}
	waitFor(t, svc, "the service's fds back after 30 attached programs", 10*time.Second, func() error {
		if n := openFDs(t, svc.Pid()); n > fdsBefore+4 {
			return fmt.Errorf("%d fds open, %d before", n, fdsBefore)
		}
		return nil
	})
	if r := lab.RunCmd(t, 30*time.Second, lab.Spec{Argv: []string{"curl", "-fsS", fmt.Sprintf("http://127.0.0.1:%d/", pubPort)}}); r.Code != 0 || r.Stdout != "from the service\n" {
		t.Errorf("the service's published port, from the host: %s", r)
	}
	// ztnc-run inside an attached program (ZTNC_HOME is set for it) runs CMD directly: it is
	// on the service's networks already.
	if r := attach("sh", "-c", "ztnc-run attach -- curl -fsS http://127.0.0.1:8080/ && ztnc-run -- curl -fsS http://127.0.0.1:8080/"); r.Code != 0 || r.Stdout != "from the service\nfrom the service\n" {
		t.Errorf("ztnc-run inside an attached program: %s", r)
	}

	// The beta's variables make a plain ztnc-run attach to the service of their home.
	beta := []string{"ZTNC_HOME=" + home.Dir, "ZT_NC_NWID=" + nwid}
	if r := runZtnc(t, 60*time.Second, beta, "--", "curl", "-fsS", "http://127.0.0.1:8080/"); r.Code != 0 || r.Stdout != "from the service\n" {
		t.Errorf("ZTNC_HOME + ZT_NC_NWID: %s", r)
	}
	beta2015 := []string{"ZT_NC_NETWORK=" + filepath.Join(home.Dir, "nc_"+nwid)}
	if r := runZtnc(t, 60*time.Second, beta2015, "--", "curl", "-fsS", "http://127.0.0.1:8080/"); r.Code != 0 || r.Stdout != "from the service\n" {
		t.Errorf("ZT_NC_NETWORK=HOME/nc_NWID: %s", r)
	}
	if r := runZtnc(t, 30*time.Second, []string{"ZT_NC_NETWORK=" + home.Dir}, "--", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "want HOME/nc_NWID") {
		t.Errorf("malformed ZT_NC_NETWORK: %s", r)
	}
	other := s.ctl.Address + "000099"
	if r := runZtnc(t, 30*time.Second, []string{"ZTNC_HOME=" + home.Dir, "ZT_NC_NWID=" + other}, "--", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "network "+other+" is not joined") {
		t.Errorf("ZT_NC_NWID of a network the service has not joined: %s", r)
	}
	if r := runZtnc(t, 30*time.Second, beta, "-p", "18080:80", "--", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "--publish") {
		t.Errorf("a flag of its own while attaching through the environment: %s", r)
	}

	// Another member, with a server of its own, fetches from the attached server.
	m2Site := t.TempDir()
	os.WriteFile(filepath.Join(m2Site, "member.txt"), []byte("from the member\n"), 0o644)
	m2 := ztnc(t, "member", nil, append(m2Flags, "--nwid", nwid, "--", "sh", "-c",
		`python3 -m http.server 8081 --directory `+m2Site+` >/dev/null 2>&1 &
curl -fsS --retry 30 --retry-delay 1 --retry-all-errors http://`+svcAddr.String()+`:8080/ && echo fetched; wait`)...)
	waitFor(t, m2, "the member's fetch", 60*time.Second, func() error {
		if !strings.Contains(m2.Stdout.String(), "from the service\nfetched") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	// attach works with a ztnc-run --nwid too: at the member, 127.0.0.1 is its server.
	if r := runZtnc(t, 60*time.Second, nil, "attach", "--home", m2Home.Dir, "--", "curl", "-fsS", "--retry", "10", "--retry-all-errors", "http://127.0.0.1:8081/member.txt"); r.Code != 0 || r.Stdout != "from the member\n" {
		t.Errorf("attach to the member's ztnc-run: %s", r)
	}

	// An attached watcher of the member, running across the leave below.
	watch := ztnc(t, "watch", nil, "attach", "--home", home.Dir, "--", "sh", "-c",
		`while :; do if curl -fsS -m 5 -o /dev/null http://`+m2Addr.String()+`:8081/member.txt; then echo up; else echo down; fi; sleep 0.2; done`)
	waitFor(t, watch, "the watcher reaching the member", 30*time.Second, func() error {
		if !strings.Contains(watch.Stdout.String(), "up") {
			return fmt.Errorf("not yet: %q", watch.Stdout.String())
		}
		return nil
	})
	var st statusJSON
	r = cli(t, &st, "status", "-j", "--home", home.Dir)
	attached := false
	for _, p := range st.Ztnc.Programs {
		attached = attached || slices.Equal(p.Argv, []string{"python3", "-m", "http.server", "8080", "--directory", site})
	}
	if r.Code != 0 || st.Ztnc.PID != svc.Pid() || !attached {
		t.Errorf("status lacks the attached server: %s", r)
	}

	t.Run("exit-status", func(t *testing.T) {
		if r := attach("sh", "-c", "exit 7"); r.Code != 7 {
			t.Errorf("exit 7: %s", r)
		}
		if r := attach("sh", "-c", "kill -KILL $$"); r.Code != 137 {
			t.Errorf("killed by SIGKILL: %s", r)
		}
		// A program that makes no socket call may end before the instance takes it over:
		// its status is still the launcher's.
		for i := 0; i < 10; i++ {
			if r := attach("true"); r.Code != 0 {
				t.Errorf("true, run %d: %s", i, r)
			}
		}
		if r := attach("no-such-program-ztnc"); r.Code != 127 || !strings.Contains(r.Stderr, "command not found") {
			t.Errorf("not found: %s", r)
		}
		notExec := filepath.Join(t.TempDir(), "script")
		os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
		if r := attach(notExec); r.Code != 126 {
			t.Errorf("not executable: %s", r)
		}
		if r := runZtnc(t, 30*time.Second, nil, "attach", "--home", t.TempDir(), "--", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "no ztnc-run is running with home") {
			t.Errorf("no instance: %s", r)
		}
		p := ztnc(t, "trap", nil, "attach", "--home", home.Dir, "--", "sh", "-c", `trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done`)
		waitFor(t, p, "the trapping program", 30*time.Second, func() error {
			if !strings.Contains(p.Stdout.String(), "ready") {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		p.Cmd.Process.Signal(syscall.SIGTERM)
		if code := p.Wait(t, 10*time.Second); code != 42 {
			t.Errorf("SIGTERM to attach: exit %d, want the program's 42\n%s", code, &p.Stderr)
		}
	})

	t.Run("owner-only", func(t *testing.T) {
		// A copy of ztnc-run that another user can run.
		bin := filepath.Join(worldReadableDir(t), "ztnc-run")
		copyFile(t, ztncRun, bin, 0o755)
		asNobody := func(args ...string) result {
			return lab.RunCmd(t, 60*time.Second, lab.Spec{Argv: append([]string{"setpriv"}, asNobody(append([]string{bin}, args...)...)...)})
		}
		// The home (0700) and the socket (0600) keep other users out...
		if r := asNobody("attach", "--home", home.Dir, "--", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "only the home's owner and root may") {
			t.Errorf("attach by another user: %s", r)
		}
		// ...and so does the instance itself (SO_PEERCRED), where modes do not.
		sock := home.Path("ztnc.sock")
		for _, c := range []struct {
			path       string
			open, kept os.FileMode
		}{{filepath.Dir(home.Dir), 0o755, 0o700}, {home.Dir, 0o755, 0o700}, {sock, 0o666, 0o600}} {
			os.Chmod(c.path, c.open)
			defer os.Chmod(c.path, c.kept)
		}
		if r := asNobody("attach", "--home", home.Dir, "--", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "uid 65534 may not use this ztnc-run") {
			t.Errorf("attach by another user through an open socket: %s", r)
		}
		if r := asNobody("join", other, "--home", home.Dir); r.Code != 1 || !strings.Contains(r.Stderr, "403") {
			t.Errorf("join by another user: %s", r)
		}
	})

	// Leaving takes the network from the running programs: the watcher loses the member, the
	// member loses the server; attaching needs a network again.
	mark := len(watch.Stdout.String())
	if r := cli(t, nil, "leave", nwid, "--home", home.Dir); r.Code != 0 || r.Stdout != "200 leave OK\n" {
		t.Fatalf("leave: %s", r)
	}
	waitFor(t, watch, "the watcher losing the member", 30*time.Second, func() error {
		if !strings.Contains(watch.Stdout.String()[mark:], "down") {
			return fmt.Errorf("still up: %q", watch.Stdout.String()[mark:])
		}
		return nil
	})
	if r := runZtnc(t, 60*time.Second, nil, "attach", "--home", m2Home.Dir, "--", "curl", "-fsS", "-m", "3", "http://"+svcAddr.String()+":8080/"); r.Code == 0 {
		t.Errorf("the member still reaches the server after the leave: %s", r)
	}
	if r := attach("true"); r.Code != 125 || !strings.Contains(r.Stderr, "no network joined") {
		t.Errorf("attach after the leave: %s", r)
	}

	// SIGTERM to the service: the attached programs get SIGTERM, the service exits 0.
	svc.Cmd.Process.Signal(syscall.SIGTERM)
	for _, p := range []*proc{srv, watch} {
		if code := p.Wait(t, 15*time.Second); code != 143 {
			t.Errorf("%s after the service's SIGTERM: exit %d, want 143 (SIGTERM)\n%s", p.Name, code, &p.Stderr)
		}
	}
	if code := svc.Wait(t, 15*time.Second); code != 0 {
		t.Errorf("service: exit %d\n%s", code, &svc.Stderr)
	}
	for _, f := range []string{"ztnc.sock", "ztnc.pid"} {
		if _, err := os.Stat(home.Path(f)); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", f, err)
		}
	}
}

// nobody is the uid and gid of the tests' unprivileged user.
const nobody = 65534

// asNobody is setpriv's argv that runs argv as nobody.
func asNobody(argv ...string) []string {
	return append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--"}, argv...)
}

// worldReadableDir is a new directory that every user can read and search (t.TempDir's
// parents are the test's only).
func worldReadableDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ztnc-service-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	return dir
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWalkthrough runs scripts/walkthrough.sh as an unprivileged user, after checking that
// the commands README.md shows for it are the script's, in its order.
func TestWalkthrough(t *testing.T) {
	need(t, "python3", "curl", "bash", "setpriv")
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("../../scripts/walkthrough.sh")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- scripts/walkthrough.sh -->\n```sh\n")
	block, _, _ = strings.Cut(block, "```")
	if !ok || block == "" {
		t.Fatal("README.md has no block after <!-- scripts/walkthrough.sh -->")
	}
	lines := strings.Split(string(script), "\n")
	at := 0
	for _, cmd := range strings.Split(block, "\n") {
		if cmd == "" || strings.HasPrefix(cmd, "#") {
			continue
		}
		cmd = strings.TrimSuffix(cmd, " &")
		i := slices.IndexFunc(lines[at:], func(l string) bool { return strings.Contains(l, cmd) })
		if i < 0 {
			t.Fatalf("README.md shows %q, which scripts/walkthrough.sh does not run (after line %d)", cmd, at)
		}
		at += i + 1
	}

	// As a user without privileges (nobody), as users run it: copies of ztnc-run and the
	// script in a directory every user can read, and a TMPDIR of nobody's own.
	dir := worldReadableDir(t)
	os.MkdirAll(filepath.Join(dir, "scripts"), 0o755)
	copyFile(t, ztncRun, filepath.Join(dir, "ztnc-run"), 0o755)
	for _, f := range []string{"walkthrough.sh", "lib.sh"} {
		copyFile(t, "../../scripts/"+f, filepath.Join(dir, "scripts", f), 0o755)
	}
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o700)
	os.Chown(tmp, nobody, nobody)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "setpriv", asNobody("bash", filepath.Join(dir, "scripts", "walkthrough.sh"))...)
	cmd.Env = append(os.Environ(), "ZTNC="+filepath.Join(dir, "ztnc-run"), "TMPDIR="+tmp, "HOME="+tmp)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	s := string(out)
	if err != nil {
		t.Fatalf("walkthrough: %v\n%s", err, s)
	}
	for _, want := range []string{"200 join OK", "200 leave OK", " OK PRIVATE "} {
		if !strings.Contains(s, want) {
			t.Errorf("walkthrough output lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "Hello from a program attached to the ztnc-run service at 203.0.113."); n != 3 {
		t.Errorf("walkthrough: %d fetches, want 3 (attached client, the beta's variables, another member):\n%s", n, s)
	}
}

// TestServiceLifetime: networks joined stay joined across a restart of the service (as
// zerotier-one keeps networks.d); a service that dies takes its attached programs with it
// (attach exits 125, nothing it started runs on); a `ztnc-run --nwid` whose program exits
// stops the programs attached to it.
func TestServiceLifetime(t *testing.T) {
	need(t, "busybox")
	s := startSelfHosted(t)
	nwid := s.network(t, "lifetime")
	home, flags := s.member(t, 4)
	runHome, runFlags := s.member(t, 5)
	for i, h := range []string{home.Address(), runHome.Address()} {
		if err := s.ctl.Authorize(t.Context(), nwid, h, netip.AddrFrom4([4]byte{203, 0, 113, byte(40 + i)})); err != nil {
			t.Fatal(err)
		}
	}
	up := func(p *proc, home string) {
		t.Helper()
		waitFor(t, p, "the network of "+p.Name, 60*time.Second, func() error {
			var nets []networkJSON
			if r := cli(t, &nets, "listnetworks", "-j", "--home", home); r.Code != 0 || len(nets) != 1 || nets[0].NWID != nwid || nets[0].Status != "OK" {
				return fmt.Errorf("%s", r)
			}
			return nil
		})
	}
	svc := ztnc(t, "service", nil, append([]string{"service", "--nwid", nwid}, flags...)...)
	up(svc, home.Dir)
	if code := svc.Stop(); code != 0 {
		t.Fatalf("service after SIGTERM: exit %d\n%s", code, &svc.Stderr)
	}
	// Restarted without --nwid, it has the network again.
	svc = ztnc(t, "service again", nil, append([]string{"service"}, flags...)...)
	up(svc, home.Dir)

	// The attached programs' sleep, recognisable among the host's processes.
	marker := fmt.Sprintf("sleep %d", 1000000+os.Getpid())
	sleeper := func(name, home string) *proc {
		p := ztnc(t, name, nil, "attach", "--home", home, "--", "sh", "-c", "echo ready; busybox "+marker+"; true")
		waitFor(t, p, name+" started", 30*time.Second, func() error {
			if !strings.Contains(p.Stdout.String(), "ready") {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		return p
	}
	a := sleeper("attached", home.Dir)
	svc.Cmd.Process.Kill()
	if code := a.Wait(t, 10*time.Second); code != 125 || !strings.Contains(a.Stderr.String(), "went away") {
		t.Errorf("attach when its service was killed: exit %d, want 125\n%s", code, &a.Stderr)
	}
	if ps := processesWith(marker); len(ps) > 0 {
		t.Errorf("left running without their service: %q", ps)
	}

	// A ztnc-run --nwid running its own program takes attached programs, and stops them
	// when its program ends.
	r := ztnc(t, "run", nil, append(runFlags, "--nwid", nwid, "--", "busybox", "sleep", "600")...)
	up(r, runHome.Dir)
	b := sleeper("attached to run", runHome.Dir)
	r.Cmd.Process.Signal(syscall.SIGTERM)
	if code := r.Wait(t, 15*time.Second); code != 143 {
		t.Errorf("ztnc-run --nwid after SIGTERM: exit %d, want 143", code)
	}
	if code := b.Wait(t, 15*time.Second); code != 143 {
		t.Errorf("attached to the ztnc-run that exited: exit %d, want 143 (SIGTERM)\n%s", code, &b.Stderr)
	}
	if ps := processesWith(marker); len(ps) > 0 {
		t.Errorf("left running: %q", ps)
	}
}

// TestServiceTwoNetworks: a service on two networks; a server attached to it listens on both
// (a wildcard listener), and a member of each network reaches it at the service's address in
// that network; leaving one network takes it from the server, the other stays.
func TestServiceTwoNetworks(t *testing.T) {
	need(t, "python3", "curl")
	s := startSelfHosted(t)
	nwA, nwB := s.network(t, "a"), createNetwork(t, s.ctl, "b")
	home, flags := s.member(t, 2)
	mA, mAFlags := s.member(t, 3)
	mB, mBFlags := s.member(t, 4)
	// Both networks assign from 203.0.113.0/24: the service has the same prefix on two
	// networks, and reaches each member through the network that has it.
	for _, a := range []struct {
		nwid, node string
		last       byte
	}{{nwA, home.Address(), 21}, {nwB, home.Address(), 22}, {nwA, mA.Address(), 31}, {nwB, mB.Address(), 32}} {
		if err := s.ctl.Authorize(t.Context(), a.nwid, a.node, netip.AddrFrom4([4]byte{203, 0, 113, a.last})); err != nil {
			t.Fatal(err)
		}
	}
	svc := ztnc(t, "service", nil, append([]string{"service", "--isolate", "--nwid", nwA + "," + nwB}, flags...)...)
	waitFor(t, svc, "both networks OK", 60*time.Second, func() error {
		var nets []networkJSON
		if r := cli(t, &nets, "listnetworks", "-j", "--home", home.Dir); r.Code != 0 || len(nets) != 2 || nets[0].Status != "OK" || nets[1].Status != "OK" {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
	site := t.TempDir()
	os.WriteFile(filepath.Join(site, "index.html"), []byte("on two networks\n"), 0o644)
	ztnc(t, "server", nil, "attach", "--home", home.Dir, "--", "python3", "-m", "http.server", "8080", "--directory", site)
	fetch := func(flags []string, nwid, addr string) result {
		t.Helper()
		return runZtnc(t, 90*time.Second, nil, append(flags, "--nwid", nwid, "--", "curl", "-fsS", "-m", "5", "--retry", "20", "--retry-all-errors", "http://"+addr+":8080/")...)
	}
	if r := fetch(mAFlags, nwA, "203.0.113.21"); r.Code != 0 || r.Stdout != "on two networks\n" {
		t.Errorf("member of network a: %s", r)
	}
	if r := fetch(mBFlags, nwB, "203.0.113.22"); r.Code != 0 || r.Stdout != "on two networks\n" {
		t.Errorf("member of network b: %s", r)
	}
	if r := cli(t, nil, "leave", nwB, "--home", home.Dir); r.Code != 0 {
		t.Fatalf("leave b: %s", r)
	}
	if r := runZtnc(t, 60*time.Second, nil, append(mBFlags, "--nwid", nwB, "--", "curl", "-fsS", "-m", "3", "http://203.0.113.22:8080/")...); r.Code == 0 {
		t.Errorf("member of network b reaches the server after the service left b: %s", r)
	}
	if r := fetch(mAFlags, nwA, "203.0.113.21"); r.Code != 0 || r.Stdout != "on two networks\n" {
		t.Errorf("member of network a after the service left b: %s", r)
	}
}

// openFDs counts the file descriptors process pid has open.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
