package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// Container entrypoint mode: every flag of a command can come from the environment, so that an
// image's ENTRYPOINT ["ztnc-run", "--"] is configured with `docker run -e`. The variable of
// --some-flag is ZTNC_SOME_FLAG; a flag on the command line wins over its variable. An empty
// variable counts as unset.

// envPrefix starts the name of every flag's variable.
const envPrefix = "ZTNC_"

// envAliases are further variables for a flag, read when ZTNC_<FLAG> is unset: ZT_NC_NWID is
// what the 2015 Network Containers beta's users have in their scripts.
var envAliases = map[string][]string{"nwid": {"ZT_NC_NWID"}}

// envExcluded are flags without a variable: output format switches of one-shot commands and
// the help flag.
var envExcluded = map[string]bool{"help": true, "json": true}

// envOverridden names, for a flag, the flags whose presence on the command line makes its
// variable moot: a network chosen on the command line replaces the one from the environment.
var envOverridden = map[string][]string{"nwid": {"local"}, "local": {"nwid"}}

// identitySecretEnv gives the node's identity instead of the home's (a value, or file:PATH).
const identitySecretEnv = "ZTNC_IDENTITY_SECRET"

// envVar is the variable of a flag.
func envVar(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag of cmd that was not given on the command line from its variable.
func applyEnv(cmd *cobra.Command) error {
	var errs []error
	fs := cmd.Flags()
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Hidden || envExcluded[f.Name] {
			return
		}
		for _, other := range envOverridden[f.Name] {
			if o := fs.Lookup(other); o != nil && o.Changed {
				return
			}
		}
		name, val := lookupEnv(f.Name)
		if val == "" {
			return
		}
		if err := setFromEnv(f, val); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, val, err))
			return
		}
		markFromEnv(f, name)
	})
	if err := applyBetaNetwork(fs); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// markFromEnv records that variable name set flag f.
func markFromEnv(f *pflag.Flag, name string) {
	f.Changed = true
	if f.Annotations == nil {
		f.Annotations = map[string][]string{}
	}
	f.Annotations[envAnnotation] = []string{name}
}

// betaNetworkEnv is how the 2015 beta's programs named their service and network at once:
// ZT_NC_NETWORK=HOME/nc_NWID (the path of the service's socket for that network).
const betaNetworkEnv = "ZT_NC_NETWORK"

// applyBetaNetwork sets --home and --nwid from ZT_NC_NETWORK where neither the command line
// nor another variable did (and --local is not given).
func applyBetaNetwork(fs *pflag.FlagSet) error {
	val := strings.TrimSpace(os.Getenv(betaNetworkEnv))
	nwid, home := fs.Lookup("nwid"), fs.Lookup("home")
	if val == "" || nwid == nil || home == nil || setOnCommandLine(fs.Lookup("local")) {
		return nil
	}
	dir, base := filepath.Split(filepath.Clean(val))
	hex, ok := strings.CutPrefix(base, "nc_")
	id, err := parseNWID(hex)
	if !ok || err != nil || dir == "" {
		return fmt.Errorf("%s=%q: want HOME/nc_NWID, the 2015 beta's form (or use ZTNC_HOME and ZTNC_NWID)", betaNetworkEnv, val)
	}
	if !nwid.Changed {
		if err := nwid.Value.Set(id); err != nil {
			return err
		}
		markFromEnv(nwid, betaNetworkEnv)
	}
	if !home.Changed {
		if err := home.Value.Set(filepath.Clean(dir)); err != nil {
			return err
		}
		markFromEnv(home, betaNetworkEnv)
	}
	return nil
}

// parseNWID checks a network ID of 16 hex digits and returns it in canonical form.
func parseNWID(s string) (string, error) {
	id, err := ztaddr.ParseNetworkID(s)
	if err != nil || id == 0 || len(s) != 16 {
		return "", fmt.Errorf("network ID %q: want 16 hex digits", s)
	}
	return id.String(), nil
}

// envAnnotation marks a flag set from its variable (the value names the variable).
const envAnnotation = "ztnc-env"

// setOnCommandLine reports whether a flag was given on the command line (not by a variable).
func setOnCommandLine(f *pflag.Flag) bool {
	return f != nil && f.Changed && len(f.Annotations[envAnnotation]) == 0
}

// setFromEnvironment reports whether a flag was set by its variable.
func setFromEnvironment(f *pflag.Flag) bool {
	return f != nil && len(f.Annotations[envAnnotation]) > 0
}

// lookupEnv returns the first set variable of a flag and its value.
func lookupEnv(flag string) (name, val string) {
	for _, name := range append([]string{envVar(flag)}, envAliases[flag]...) {
		if val := strings.TrimSpace(os.Getenv(name)); val != "" {
			return name, val
		}
	}
	return "", ""
}

// setFromEnv sets a flag from a variable's value: lists are split at commas and white space,
// booleans take 1/0, true/false, yes/no, on/off, and durations a bare number of seconds too.
func setFromEnv(f *pflag.Flag, val string) error {
	switch f.Value.Type() {
	case "stringArray", "stringSlice":
		for _, v := range strings.FieldsFunc(val, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
			if err := f.Value.Set(v); err != nil {
				return err
			}
		}
		return nil
	case "bool":
		switch strings.ToLower(val) {
		case "1", "true", "yes", "on":
			return f.Value.Set("true")
		case "0", "false", "no", "off":
			return f.Value.Set("false")
		}
		return errors.New("want 1/0, true/false, yes/no or on/off")
	case "duration":
		if strings.Trim(val, "0123456789") == "" {
			val += "s"
		}
	}
	if err := f.Value.Set(val); err != nil {
		return fmt.Errorf("--%s: %w", f.Name, err)
	}
	return nil
}

// takeIdentitySecret returns ZTNC_IDENTITY_SECRET and removes it from the environment, so
// that the program never inherits the key.
func takeIdentitySecret() string {
	val := strings.TrimSpace(os.Getenv(identitySecretEnv))
	os.Unsetenv(identitySecretEnv)
	return val
}

// installIdentity makes val, the value of ZTNC_IDENTITY_SECRET (the secret identity, or
// file:PATH naming a file holding it), the home's identity after checking it: written to a
// home without one, accepted when the home holds the same one, refused when it holds
// another. It returns the identity's address, or "" when val is empty.
func installIdentity(ctx context.Context, home, val string) (string, error) {
	if val == "" {
		return "", nil
	}
	src := identitySecretEnv
	if path, isFile := strings.CutPrefix(val, "file:"); isFile {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", identitySecretEnv, err)
		}
		val, src = string(b), identitySecretEnv+" ("+path+")"
	}
	id, err := identity.Parse(val)
	if err == nil && !id.HasPrivate() {
		err = errors.New("it is a public identity: give the secret one (address:0:public:private, as in identity.secret)")
	}
	if err == nil {
		err = validateIdentity(ctx, id)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", src, err)
	}
	secretPath := filepath.Join(home, "identity.secret")
	b, err := os.ReadFile(secretPath)
	switch {
	case err == nil:
		have, perr := identity.Parse(string(b))
		if perr != nil {
			return "", fmt.Errorf("%s: %w (and %s is set)", secretPath, perr, identitySecretEnv)
		}
		if !have.Equal(id) || !have.HasPrivate() {
			return "", fmt.Errorf("%s is identity %s, but %s holds %s: the home keeps the identity it has; remove %s or unset %s",
				src, id.Address(), home, have.Address(), secretPath, identitySecretEnv)
		}
		return id.Address().String(), nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", fmt.Errorf("home: %w", err)
	}
	if err := writeNewFile(secretPath, id.SecretString(), 0o600); err != nil {
		return "", err
	}
	if err := writeNewFile(filepath.Join(home, "identity.public"), id.String(), 0o644); err != nil {
		return "", err
	}
	return id.Address().String(), nil
}

// validateIdentity checks that the private key belongs to the public key and the identity's
// address derivation (a memory-hard hash: tens of milliseconds), so that a mistyped or
// mismatched key is refused here rather than by every peer.
func validateIdentity(ctx context.Context, id *identity.Identity) error {
	priv, pub := id.PrivateKey(), id.PublicKey()
	xpriv, err := ecdh.X25519().NewPrivateKey(priv[:32])
	if err != nil || !bytes.Equal(xpriv.PublicKey().Bytes(), pub[:32]) {
		return errors.New("its private key does not match its public key")
	}
	msg := []byte("ztnc identity check")
	if sig, err := id.Sign(msg); err != nil || !id.Verify(msg, sig[:]) {
		return errors.New("its private signing key does not match its public key")
	}
	done := make(chan error, 1)
	go func() { done <- id.Validate() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeNewFile writes a file through a temporary name, so that a crash never leaves half of
// it, replacing whatever the name held (identity.public may be stale).
func writeNewFile(path, data string, mode os.FileMode) error {
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if err := os.WriteFile(tmp, []byte(data), mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
