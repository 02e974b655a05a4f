package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztnc/ztnc/tests/lab"
)

// dockerfile is what the tests use of the Dockerfile in docs/container.md.
type dockerfile struct {
	env         [][2]string // ENV, in order
	workdir     string
	volume      string
	entrypoint  []string
	cmd         []string
	healthcheck []string
}

// readDockerfile extracts the Dockerfile from docs/container.md.
func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile("../../docs/container.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```dockerfile\n")
	text, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/container.md has no ```dockerfile block")
	}
	var df dockerfile
	jsonArray := func(s string) []string {
		var a []string
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			t.Fatalf("docs/container.md: %q is not an exec-form JSON array: %v", s, err)
		}
		return a
	}
	for _, line := range strings.Split(strings.ReplaceAll(text, "\\\n", " "), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, args, _ := strings.Cut(line, " ")
		args = strings.TrimSpace(args)
		switch instr {
		case "ENV":
			for _, kv := range strings.Fields(args) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("docs/container.md: ENV %q: want KEY=VALUE", kv)
				}
				df.env = append(df.env, [2]string{k, v})
			}
		case "WORKDIR":
			df.workdir = args
		case "VOLUME":
			df.volume = args
		case "ENTRYPOINT":
			df.entrypoint = jsonArray(args)
		case "CMD":
			df.cmd = jsonArray(args)
		case "HEALTHCHECK":
			_, c, ok := strings.Cut(args, "CMD ")
			if !ok {
				t.Fatalf("docs/container.md: HEALTHCHECK without CMD")
			}
			df.healthcheck = jsonArray(c)
		}
	}
	if len(df.entrypoint) == 0 || len(df.cmd) == 0 || df.volume == "" || df.workdir == "" || len(df.healthcheck) == 0 {
		t.Fatalf("docs/container.md: incomplete Dockerfile: %+v", df)
	}
	return df
}

// environment is the container's environment: the image's ENV with the volume's path
// replaced by dir (what -v does), plus extra (what -e does).
func (df dockerfile) environment(volumeDir string, extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, kv := range df.env {
		v := kv[1]
		if v == df.volume || strings.HasPrefix(v, df.volume+"/") {
			v = volumeDir + strings.TrimPrefix(v, df.volume)
		}
		env = append(env, kv[0]+"="+v)
	}
	return append(env, extra...)
}

// TestContainerExample runs the Dockerfile of docs/container.md as a container runtime would:
// its entrypoint and command with its environment, as PID 1 in a network namespace of its
// own, joined to a network of our root and controller running in another namespace. Its
// HEALTHCHECK passes once the network is up; a third namespace fetches the page through the
// published port (docker's -p); `ztnc-run listnetworks` inside shows the network (docker
// exec); SIGTERM to PID 1 (docker stop) ends it with the program's status.
func TestContainerExample(t *testing.T) {
	need(t, "unshare", "env", "curl", "python3", "ip")
	df := readDockerfile(t)
	l := lab.New(t, lab.Config{})
	infra := l.AddHost("infra", "192.0.2.1")
	ctr := l.AddHost("container", "192.0.2.5")
	client := l.AddHost("client", "192.0.2.9")

	// Our root and controller on the infrastructure host.
	planet := lab.StartZtncRoot(t, ztncRun, infra, lab.Identity(rootIdentity))
	ctl := lab.StartZtncController(t, ztncRun, infra, lab.Identity(controllerIdentity), planet)
	nwid := createNetwork(t, ctl, "container")

	// The volume: an identity made in advance (so that it can be authorized first) and the
	// self-hosted network's planet. The image's WORKDIR holds the page.
	volume := homeWith(t, 2)
	volume.SetPlanet(t, planet)
	zAddr := netip.MustParseAddr("203.0.113.5")
	if err := ctl.Authorize(t.Context(), nwid, volume.Address(), zAddr); err != nil {
		t.Fatal(err)
	}
	workdir := t.TempDir()
	os.WriteFile(filepath.Join(workdir, "index.html"), []byte("served from a container\n"), 0o644)

	argv := append([]string{"env", "-i"}, df.environment(volume.Dir, "ZTNC_NWID="+nwid)...)
	argv = append(argv, "env", "-C", workdir, "unshare", "--pid", "--fork", "--mount-proc", "--kill-child")
	argv = append(argv, df.entrypoint...)
	argv = append(argv, df.cmd...)
	c := ctr.Start(t, argv[0], argv[1:]...)

	// HEALTHCHECK
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := ctr.Exec(t, df.healthcheck[0], df.healthcheck[1:]...)
		if err == nil {
			if !strings.Contains(out, `"ok": true`) {
				t.Fatalf("healthy, but: %s", out)
			}
			break
		}
		if !c.Running() || time.Now().After(deadline) {
			t.Fatalf("HEALTHCHECK never passed: %v\n%s", err, c.Output())
		}
		time.Sleep(500 * time.Millisecond)
	}

	// docker run -p: the published port, from another machine on the host's network.
	port := "8080"
	for _, kv := range df.env {
		if kv[0] == "ZTNC_PUBLISH" {
			port = strings.Split(kv[1], ":")[0]
		}
	}
	// /healthz speaks for the network, not for the program: the server may still be starting.
	var page string
	var err error
	for i := 0; ; i++ {
		page, err = client.Exec(t, "curl", "-fsS", "--max-time", "20", "http://"+lab.HostPort(ctr.Addr, mustAtoi(t, port))+"/")
		if err == nil || i == 50 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if page != "served from a container\n" {
		t.Errorf("page through the published port: %q", page)
	}

	// PID 1 of the container, the entrypoint's ztnc-run.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", c.Pid(), c.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	init, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("unshare's children: %q", b)
	}
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", init)); strings.TrimSpace(string(comm)) != "ztnc-run" {
		t.Fatalf("unshare's child is %q", comm)
	}

	// docker exec web ztnc-run -- curl: with the container's environment, a second ztnc-run
	// attaches to PID 1's, and reaches the server at its virtual address, which the
	// container's own network has no route to.
	nsArgv := append([]string{"--target", strconv.Itoa(init), "--pid", "--mount", "--", "env", "-i"}, df.environment(volume.Dir, "ZTNC_NWID="+nwid)...)
	if out := ctr.Run(t, "nsenter", append(nsArgv, "ztnc-run", "--", "curl", "-fsS", "http://"+lab.HostPort(zAddr, mustAtoi(t, df.cmd[len(df.cmd)-1]))+"/")...); out != "served from a container\n" {
		t.Errorf("docker exec ztnc-run -- curl to the server's virtual address: %q", out)
	}

	// docker exec web ztnc-run listnetworks
	execArgv := append(append([]string{"-i"}, df.environment(volume.Dir)...), "ztnc-run", "listnetworks")
	out := ctr.Run(t, "env", execArgv...)
	if want := fmt.Sprintf("200 listnetworks %s container ", nwid); !strings.Contains(out, want) || !strings.Contains(out, " OK PRIVATE ztnc "+zAddr.String()+"/24") {
		t.Errorf("docker exec ztnc-run listnetworks:\n%s", out)
	}

	// docker stop
	syscall.Kill(init, syscall.SIGTERM)
	select {
	case <-c.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("SIGTERM to PID 1 did not stop the container\n%s", c.Output())
	}
	var ee *exec.ExitError
	if err := c.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Errorf("exit: %v, want status 143\n%s", err, c.Output())
	}
	// JSON logs: the node's address is there for the operator to authorize.
	if !strings.Contains(c.Output(), `"msg":"zerotier node started"`) || !strings.Contains(c.Output(), `"address":"`+volume.Address()+`"`) {
		t.Errorf("logs lack the node's address as JSON:\n%s", c.Output())
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
