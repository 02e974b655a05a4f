package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ztnc/ztnc/zt/identity"
	"github.com/ztnc/ztnc/zt/world"
	"github.com/ztnc/ztnc/zt/ztaddr"
)

// errIdtoolFailed ends a command that has printed its own message with exit status 1, as
// zerotier-idtool does on every failure.
var errIdtoolFailed = &exitError{code: 1}

// newIdtoolCmd returns "idtool": zerotier-idtool's commands, with its arguments, output and exit
// status.
func newIdtoolCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "idtool COMMAND [ARGS...]",
		Short: "Generate, check and use ZeroTier identities; make moons (like zerotier-idtool)",
		Long: `idtool works with ZeroTier identities (identity.secret / identity.public files) and moons,
with the same arguments, output and exit status as zerotier-idtool.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Without a command, or with one it does not know, zerotier-idtool prints its help and
		// exits 1.
		Args:                  cobra.ArbitraryArgs,
		DisableFlagsInUseLine: true,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &exitError{1, fmt.Sprintf("idtool: unknown command %q (see ztnc-run idtool --help)", args[0])}
			}
			c.Help()
			return errIdtoolFailed
		},
	}
	sub := func(use, short string, args cobra.PositionalArgs, run func(c *cobra.Command, args []string) error) {
		// Wrong arguments: exit 1, like zerotier-idtool.
		usage := func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return &exitError{1, fmt.Sprintf("idtool %s: %v (see ztnc-run idtool %s --help)", c.Name(), err, c.Name())}
			}
			return nil
		}
		cmd.AddCommand(&cobra.Command{Use: use, Short: short, Args: usage, RunE: run, SilenceUsage: true, SilenceErrors: true})
	}
	sub("generate [secret-file] [public-file] [vanity-hex-prefix]", "Generate an identity (print it, or write the files)", cobra.MaximumNArgs(3), idtoolGenerate)
	sub("validate FILE|IDENTITY", "Check an identity, including its address-derivation proof of work", cobra.ExactArgs(1), idtoolValidate)
	sub("getpublic SECRET-FILE", "Print the public form of an identity", cobra.ExactArgs(1), idtoolGetPublic)
	sub("sign SECRET-FILE MSG-FILE", "Print the hex signature of a file", cobra.ExactArgs(2), idtoolSign)
	sub("verify PUBLIC-FILE MSG-FILE SIGNATURE", "Check a signature (hex, or a file holding it); exit 0 only if valid", cobra.ExactArgs(3), idtoolVerify)
	sub("initmoon PUBLIC-FILE", "Print a moon definition (JSON) with this identity as first root and a new signing key", cobra.ExactArgs(1), idtoolInitMoon)
	sub("genmoon MOON-JSON", "Write the signed moon <id>.moon for a moon definition into the current directory", cobra.ExactArgs(1), idtoolGenMoon)
	return cmd
}

// fail prints a zerotier-idtool error message and makes the command exit 1.
func fail(c *cobra.Command, format string, args ...any) error {
	fmt.Fprintf(c.ErrOrStderr(), format+"\n", args...)
	return errIdtoolFailed
}

// identityArg reads an identity given literally or as a file, as zerotier-idtool does.
func identityArg(arg string) (*identity.Identity, error) {
	if len(arg) > 32 && arg[10] == ':' {
		return identity.Parse(arg)
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return nil, err
	}
	return identity.Parse(string(b))
}

func idtoolGenerate(c *cobra.Command, args []string) error {
	var vanity uint64
	vanityBits := 0
	if len(args) == 3 {
		v, err := strconv.ParseUint(args[2], 16, 64)
		if err != nil {
			return fail(c, "invalid vanity prefix %s", args[2])
		}
		vanityBits = min(4*len(args[2]), 40)
		vanity = v & 0xffffffffff
	}
	var id *identity.Identity
	for {
		var err error
		if id, err = identity.Generate(context.Background()); err != nil {
			return fail(c, "identity generation failed: %v", err)
		}
		if uint64(id.Address())>>(40-vanityBits) == vanity {
			if vanityBits > 0 {
				fmt.Fprintf(c.ErrOrStderr(), "vanity address: found %s !\n", id.Address())
			}
			break
		}
		fmt.Fprintf(c.ErrOrStderr(), "vanity address: tried %s looking for first %d bits of %010x\n", id.Address(), vanityBits, vanity<<(40-vanityBits))
	}
	if len(args) == 0 {
		fmt.Fprint(c.OutOrStdout(), id.SecretString())
		return nil
	}
	if err := os.WriteFile(args[0], []byte(id.SecretString()), 0o600); err != nil {
		return fail(c, "Error writing to %s", args[0])
	}
	fmt.Fprintf(c.OutOrStdout(), "%s written\n", args[0])
	if len(args) >= 2 {
		if err := os.WriteFile(args[1], []byte(id.String()), 0o644); err != nil {
			return fail(c, "Error writing to %s", args[1])
		}
		fmt.Fprintf(c.OutOrStdout(), "%s written\n", args[1])
	}
	return nil
}

func idtoolValidate(c *cobra.Command, args []string) error {
	id, err := identityArg(args[0])
	if err != nil {
		return fail(c, "Identity argument invalid or file unreadable: %s", args[0])
	}
	if id.Validate() != nil {
		return fail(c, "%s FAILED validation.", args[0])
	}
	fmt.Fprintf(c.OutOrStdout(), "%s is a valid identity\n", args[0])
	return nil
}

func idtoolGetPublic(c *cobra.Command, args []string) error {
	id, err := identityArg(args[0])
	if err != nil {
		return fail(c, "Identity argument invalid or file unreadable: %s", args[0])
	}
	fmt.Fprint(c.OutOrStdout(), id.String())
	return nil
}

func idtoolSign(c *cobra.Command, args []string) error {
	id, err := identityArg(args[0])
	if err != nil {
		return fail(c, "Identity argument invalid or file unreadable: %s", args[0])
	}
	if !id.HasPrivate() {
		return fail(c, "%s does not contain a private key (must use private to sign)", args[0])
	}
	msg, err := os.ReadFile(args[1])
	if err != nil {
		return fail(c, "%s is not readable", args[1])
	}
	sig, err := id.Sign(msg)
	if err != nil {
		return fail(c, "signing failed: %v", err)
	}
	fmt.Fprint(c.OutOrStdout(), hex.EncodeToString(sig[:]))
	return nil
}

func idtoolVerify(c *cobra.Command, args []string) error {
	id, err := identityArg(args[0])
	if err != nil {
		return fail(c, "Identity argument invalid or file unreadable: %s", args[0])
	}
	msg, err := os.ReadFile(args[1])
	if err != nil {
		return fail(c, "%s is not readable", args[1])
	}
	// The signature is given in hex, or is the name of a file holding it.
	sig, err := hex.DecodeString(strings.TrimSpace(args[2]))
	if err != nil || !id.Verify(msg, sig) {
		b, ferr := os.ReadFile(args[2])
		if ferr != nil {
			return fail(c, "%s signature check FAILED", args[1])
		}
		if sig, err = hex.DecodeString(strings.TrimSpace(string(b))); err != nil || !id.Verify(msg, sig) {
			return fail(c, "%s signature check FAILED", args[1])
		}
	}
	fmt.Fprintf(c.OutOrStdout(), "%s signature valid\n", args[1])
	return nil
}

// moonSpec is the moon definition JSON of zerotier-idtool initmoon/genmoon (keys in the
// alphabetical order zerotier-idtool prints them).
type moonSpec struct {
	ID                    string     `json:"id"`
	ObjType               string     `json:"objtype"`
	Roots                 []moonRoot `json:"roots"`
	SigningKey            string     `json:"signingKey"`
	SigningKeySecret      string     `json:"signingKey_SECRET"`
	UpdatesMustBeSignedBy string     `json:"updatesMustBeSignedBy"`
	WorldType             string     `json:"worldType"`
}

type moonRoot struct {
	Identity        string   `json:"identity"`
	StableEndpoints []string `json:"stableEndpoints"`
}

func idtoolInitMoon(c *cobra.Command, args []string) error {
	id, err := identityArg(args[0])
	if err != nil {
		return fail(c, "%s is not a valid identity", args[0])
	}
	pub, priv, err := identity.GenerateKeyPair()
	if err != nil {
		return fail(c, "key generation failed: %v", err)
	}
	spec := moonSpec{
		ID: id.Address().String(), ObjType: "world", WorldType: "moon",
		Roots:      []moonRoot{{Identity: id.String(), StableEndpoints: []string{}}},
		SigningKey: hex.EncodeToString(pub[:]), SigningKeySecret: hex.EncodeToString(priv[:]),
		UpdatesMustBeSignedBy: hex.EncodeToString(pub[:]),
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(spec); err != nil {
		return fail(c, "%v", err)
	}
	_, err = io.Copy(c.OutOrStdout(), &out)
	return err
}

func idtoolGenMoon(c *cobra.Command, args []string) error {
	raw, err := os.ReadFile(args[0])
	if err != nil {
		return fail(c, "cannot read %s", args[0])
	}
	var spec moonSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fail(c, "%s: %v", args[0], err)
	}
	w, err := moonFromSpec(&spec, uint64(time.Now().UnixMilli()))
	if err != nil {
		return fail(c, "%v", err)
	}
	name := fmt.Sprintf("%016x.moon", w.ID)
	if err := os.WriteFile(name, w.Bytes(), 0o644); err != nil {
		return fail(c, "Error writing to %s", name)
	}
	fmt.Fprintf(c.OutOrStdout(), "wrote %s (signed world with timestamp %d)\n", name, w.Timestamp)
	return nil
}

// moonFromSpec signs the world a moon definition describes. Like zerotier-idtool it sorts the
// roots (by address, then key) and each root's endpoints (zerotier-one's InetAddress order).
func moonFromSpec(spec *moonSpec, timestamp uint64) (*world.World, error) {
	id, err := strconv.ParseUint(spec.ID, 16, 64)
	if err != nil || id == 0 {
		return nil, errors.New("ID in moon definition is invalid")
	}
	var t world.Type
	switch spec.WorldType {
	case "moon":
		t = world.TypeMoon
	case "planet":
		t = world.TypePlanet
	default:
		return nil, errors.New("invalid worldType")
	}
	var signPub, umsb identity.PublicKey
	var signPriv identity.PrivateKey
	for _, k := range []struct {
		dst []byte
		hex string
		n   string
	}{{signPub[:], spec.SigningKey, "signingKey"}, {signPriv[:], spec.SigningKeySecret, "signingKey_SECRET"}, {umsb[:], spec.UpdatesMustBeSignedBy, "updatesMustBeSignedBy"}} {
		if b, err := hex.DecodeString(k.hex); err != nil || len(b) != len(k.dst) {
			return nil, fmt.Errorf("invalid %s", k.n)
		} else {
			copy(k.dst, b)
		}
	}
	if derived, err := signPriv.Public(); err != nil || derived != signPub {
		return nil, errors.New("signingKey_SECRET does not match signingKey")
	}
	var roots []world.Root
	for _, r := range spec.Roots {
		rid, err := identity.Parse(r.Identity)
		if err != nil {
			return nil, fmt.Errorf("root identity: %w", err)
		}
		root := world.Root{Identity: rid.Public()}
		for _, ep := range r.StableEndpoints {
			a, err := parseIPSlashPort(ep)
			if err != nil {
				return nil, err
			}
			root.StableEndpoints = append(root.StableEndpoints, a)
		}
		sort.SliceStable(root.StableEndpoints, func(i, j int) bool {
			return inetAddressLess(root.StableEndpoints[i].AddrPort, root.StableEndpoints[j].AddrPort)
		})
		roots = append(roots, root)
	}
	sort.SliceStable(roots, func(i, j int) bool {
		a, b := roots[i].Identity, roots[j].Identity
		if a.Address() != b.Address() {
			return a.Address() < b.Address()
		}
		return bytes.Compare(a.PublicKey()[:], b.PublicKey()[:]) < 0
	})
	return world.New(t, id, timestamp, umsb, roots, &signPriv)
}

// parseIPSlashPort reads zerotier-one's "ip/port" endpoint notation.
func parseIPSlashPort(s string) (ztaddr.InetAddress, error) {
	ipStr, portStr, _ := strings.Cut(s, "/")
	ip, err := netip.ParseAddr(ipStr)
	if err != nil {
		return ztaddr.InetAddress{}, fmt.Errorf("stable endpoint %q: want ip/port", s)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if portStr != "" && err != nil {
		return ztaddr.InetAddress{}, fmt.Errorf("stable endpoint %q: bad port", s)
	}
	return ztaddr.InetAddressOf(netip.AddrPortFrom(ip, uint16(port))), nil
}

// inetAddressLess is zerotier-one's InetAddress ordering on little-endian machines: IPv4 before
// IPv6, then the port and the IPv4 address compared as the raw network-order bytes read as
// little-endian integers, then IPv6 addresses bytewise.
func inetAddressLess(a, b netip.AddrPort) bool {
	if a.Addr().Is4() != b.Addr().Is4() {
		return a.Addr().Is4()
	}
	pa, pb := a.Port()>>8|a.Port()<<8, b.Port()>>8|b.Port()<<8
	if pa != pb {
		return pa < pb
	}
	if a.Addr().Is4() {
		x, y := a.Addr().As4(), b.Addr().As4()
		return binary.LittleEndian.Uint32(x[:]) < binary.LittleEndian.Uint32(y[:])
	}
	x, y := a.Addr().As16(), b.Addr().As16()
	return bytes.Compare(x[:], y[:]) < 0
}
