package compat

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ztnc/ztnc/tests/compat/agent"
)

// accountPrefix starts the name of every account a matrix run creates; the PID of the run
// follows, so that a later run can remove the accounts of runs that were killed.
const accountPrefix = "ztnc-compat-"

// Account is an unprivileged user with a shell and a home directory: servers that refuse to
// run as root (postgres, mariadbd) run as it, and ssh/sftp log in as it.
type Account struct {
	Name     string
	UID, GID uint32
	Home     string
}

// Creds runs a program as the account.
func (a *Account) Creds() *agent.Creds {
	return &agent.Creds{UID: a.UID, GID: a.GID, Groups: []uint32{a.GID}}
}

// Env is the environment a login as the account would have.
func (a *Account) Env() []string {
	return []string{"HOME=" + a.Home, "USER=" + a.Name, "LOGNAME=" + a.Name}
}

// Chown gives path to the account.
func (a *Account) Chown(path string) error { return os.Chown(path, int(a.UID), int(a.GID)) }

// createAccount adds a system user and group named for this process, with home (created here)
// as its home directory and /bin/sh as its shell. remove deletes both. Its password is "*":
// no password logs in, but the account is not locked ("!"), which sshd would refuse.
func createAccount(home string) (a *Account, remove func() error, err error) {
	reapStaleAccounts()
	name := accountPrefix + strconv.Itoa(os.Getpid())
	if err := retryLocked(func() *exec.Cmd {
		return exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", home, "--shell", "/bin/sh", "--password", "*", name)
	}); err != nil {
		return nil, nil, err
	}
	remove = func() error {
		return retryLocked(func() *exec.Cmd { return exec.Command("userdel", name) })
	}
	a = &Account{Name: name, Home: home}
	uid, gid, err := lookupAccount(name)
	if err == nil {
		a.UID, a.GID = uid, gid
		if err = os.MkdirAll(home, 0o755); err == nil {
			err = a.Chown(home)
		}
	}
	if err != nil {
		remove()
		return nil, nil, err
	}
	return a, remove, nil
}

// retryLocked runs a shadow-utils command, retrying while another process holds the lock on
// /etc/passwd (several test binaries may create accounts at once).
func retryLocked(cmd func() *exec.Cmd) error {
	var err error
	for i := 0; i < 50; i++ {
		var out []byte
		c := cmd()
		out, err = c.CombinedOutput()
		if err == nil {
			return nil
		}
		err = fmt.Errorf("%s: %v: %s", strings.Join(c.Args, " "), err, strings.TrimSpace(string(out)))
		if !strings.Contains(string(out), "lock") {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func lookupAccount(name string) (uid, gid uint32, err error) {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Split(s.Text(), ":")
		if len(fields) < 4 || fields[0] != name {
			continue
		}
		u, err1 := strconv.ParseUint(fields[2], 10, 32)
		g, err2 := strconv.ParseUint(fields[3], 10, 32)
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("/etc/passwd: bad entry for %s", name)
		}
		return uint32(u), uint32(g), nil
	}
	return 0, 0, fmt.Errorf("/etc/passwd: no user %s", name)
}

// reapStaleAccounts removes accounts created by matrix runs that no longer exist (a run killed
// by a timeout never runs its cleanup).
func reapStaleAccounts() {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return
	}
	var stale []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, _, _ := strings.Cut(s.Text(), ":")
		pidText, ok := strings.CutPrefix(name, accountPrefix)
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			stale = append(stale, name)
		}
	}
	f.Close()
	for _, name := range stale {
		retryLocked(func() *exec.Cmd { return exec.Command("userdel", name) })
	}
}
