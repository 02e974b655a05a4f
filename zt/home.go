package zt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// DefaultHome is the state directory used when none is given: $ZTNC_HOME, else
// $XDG_STATE_HOME/ztnc, else ~/.local/state/ztnc.
func DefaultHome() (string, error) {
	if h := os.Getenv("ZTNC_HOME"); h != "" {
		return h, nil
	}
	if s := os.Getenv("XDG_STATE_HOME"); s != "" {
		return filepath.Join(s, "ztnc"), nil
	}
	u, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("default home: %w (set ZTNC_HOME)", err)
	}
	return filepath.Join(u, ".local", "state", "ztnc"), nil
}

// home is a node's state directory, laid out like zerotier-one's: identity.secret and
// identity.public, planet, moons.d/<id>.moon, networks.d/<nwid>.conf, peers.d/<addr>.peer.
type home string

const (
	identitySecretFile = "identity.secret"
	identityPublicFile = "identity.public"
	planetFile         = "planet"
	moonsDir           = "moons.d"
	networksDir        = "networks.d"
	peersDir           = "peers.d"
	// portFile remembers the UDP port last bound, so that a node that could not get 9993 keeps
	// its port across restarts (peers keep sending to the old port for minutes otherwise).
	portFile = "ztnc.port"
)

func (h home) path(elem ...string) string {
	return filepath.Join(append([]string{string(h)}, elem...)...)
}

func (h home) init() error {
	for _, d := range []string{"", moonsDir, networksDir, peersDir} {
		if err := os.MkdirAll(h.path(d), 0o700); err != nil {
			return fmt.Errorf("home: %w", err)
		}
	}
	return nil
}

// identity reads identity.secret, or creates it (and identity.public) on first use.
func (h home) identity(ctx context.Context) (*identity.Identity, bool, error) {
	b, err := os.ReadFile(h.path(identitySecretFile))
	if err == nil {
		id, err := identity.Parse(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", h.path(identitySecretFile), err)
		}
		if !id.HasPrivate() {
			return nil, false, fmt.Errorf("%s: %w", h.path(identitySecretFile), identity.ErrNoPrivate)
		}
		if pub, err := os.ReadFile(h.path(identityPublicFile)); err != nil || strings.TrimSpace(string(pub)) != id.String() {
			if err := writeFileAtomic(h.path(identityPublicFile), []byte(id.String()), 0o644); err != nil {
				return nil, false, err
			}
		}
		return id, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	id, err := identity.Generate(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("generate identity: %w", err)
	}
	if err := writeFileAtomic(h.path(identitySecretFile), []byte(id.SecretString()), 0o600); err != nil {
		return nil, false, err
	}
	if err := writeFileAtomic(h.path(identityPublicFile), []byte(id.String()), 0o644); err != nil {
		return nil, false, err
	}
	return id, true, nil
}

// readOptional returns a file's contents, or nil if it does not exist.
func (h home) readOptional(elem ...string) ([]byte, error) {
	b, err := os.ReadFile(h.path(elem...))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func (h home) write(data []byte, mode os.FileMode, elem ...string) error {
	return writeFileAtomic(h.path(elem...), data, mode)
}

func (h home) remove(elem ...string) error {
	err := os.Remove(h.path(elem...))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func networkFile(nwid ztaddr.NetworkID) string { return nwid.String() + ".conf" }
func peerFile(a ztaddr.Address) string         { return a.String() + ".peer" }
func moonFile(id uint64) string                { return fmt.Sprintf("%016x.moon", id) }

// list returns the names in a subdirectory ending in suffix.
func (h home) list(dir, suffix string) ([]string, error) {
	es, err := os.ReadDir(h.path(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var names []string
	for _, e := range es {
		if !e.IsDir() && strings.HasSuffix(e.Name(), suffix) {
			names = append(names, e.Name())
		}
	}
	return names, err
}

func (h home) lastPort() int {
	b, _ := h.readOptional(portFile)
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || p <= 0 || p > 65535 {
		return 0
	}
	return p
}

// writeFileAtomic replaces name with data so that readers never see a partial file.
func writeFileAtomic(name string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
