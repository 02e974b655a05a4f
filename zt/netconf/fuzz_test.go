package netconf

import (
	"bytes"
	"testing"
)

func FuzzDictionary(f *testing.F) {
	f.Add([]byte("v=0000000000000007\nn=a\\eb\\n\\0\\\\\nC=\x01\\0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := ParseDictionary(b)
		enc := d.Bytes()
		if again := ParseDictionary(enc).Bytes(); !bytes.Equal(again, enc) {
			t.Fatalf("encoding not stable: %q -> %q", enc, again)
		}
		for _, e := range d.Entries {
			d.Uint(e.Key, 0)
			d.Int(e.Key, 0)
			d.Bool(e.Key, false)
		}
	})
}

func FuzzNetworkConfig(f *testing.F) {
	f.Add(sampleConfig(f).Dictionary().Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseNetworkConfig(ParseDictionary(b))
		if err != nil {
			return
		}
		enc := c.Dictionary().Bytes()
		c2, err := ParseNetworkConfig(ParseDictionary(enc))
		if err != nil {
			t.Fatalf("re-encoded config does not parse: %v\n%q", err, enc)
		}
		if again := c2.Dictionary().Bytes(); !bytes.Equal(again, enc) {
			t.Fatalf("encoding not stable:\n%q\n%q", enc, again)
		}
		c.AssignedPrefixes()
	})
}

// fuzzCredential checks decode → encode → decode stability for one credential type.
func fuzzCredential[T interface{ Append([]byte) []byte }](f *testing.F, seed []byte, parse func([]byte) (T, int, error)) {
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, n, err := parse(b)
		if err != nil {
			return
		}
		enc := c.Append(nil)
		if n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		c2, n2, err := parse(enc)
		if err != nil || n2 != len(enc) || !bytes.Equal(c2.Append(nil), enc) {
			t.Fatalf("re-encoding not stable: %v", err)
		}
	})
}

func FuzzCOM(f *testing.F) {
	fuzzCredential(f, sampleConfig(f).COM.Append(nil), ParseCOM)
}

func FuzzCapability(f *testing.F) {
	fuzzCredential(f, sampleConfig(f).Capabilities[0].Append(nil), ParseCapability)
}

func FuzzTag(f *testing.F) { fuzzCredential(f, sampleConfig(f).Tags[0].Append(nil), ParseTag) }

func FuzzCOO(f *testing.F) { fuzzCredential(f, sampleConfig(f).COOs[0].Append(nil), ParseCOO) }

func FuzzRevocation(f *testing.F) {
	r := &Revocation{NetworkID: 1, Target: 2, CredentialType: CredentialCOM}
	fuzzCredential(f, r.Append(nil), ParseRevocation)
}

func FuzzRules(f *testing.F) {
	f.Add(AppendRules(nil, []Rule{MatchEtherTypeRule(0x800), Action(ActionAccept)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		rules, err := ParseRules(b, MaxRules)
		if err != nil {
			return
		}
		if enc := AppendRules(nil, rules); !bytes.Equal(enc, b) {
			t.Fatalf("rules re-encode differently: %x -> %x", b, enc)
		}
		for _, r := range rules {
			r.Address()
			r.MAC()
			r.Prefix()
			r.Range()
			r.Tag()
			r.Uint64()
			r.Uint16()
			r.Uint8()
		}
	})
}
