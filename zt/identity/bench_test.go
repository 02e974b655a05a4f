package identity

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkGenerate is the time to generate one identity (random: ~15 hash attempts on
// average, spread over GOMAXPROCS workers).
func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		if _, err := Generate(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGenerateZT1 runs `zerotier-idtool generate` (ZT1_BIN -i generate) per iteration, to
// compare side by side with BenchmarkGenerate in the same run.
func BenchmarkGenerateZT1(b *testing.B) {
	bin := os.Getenv("ZT1_BIN")
	if bin == "" {
		b.Skip("ZT1_BIN not set")
	}
	out := filepath.Join(b.TempDir(), "id.secret")
	for b.Loop() {
		if err := exec.Command(bin, "-i", "generate", out).Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate is one memory-hard hash: the cost of checking a new peer's identity.
func BenchmarkValidate(b *testing.B) {
	id, _ := Generate(context.Background())
	for b.Loop() {
		if err := id.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateZT1 runs `zerotier-idtool validate` per iteration (one hash plus process
// start-up), for comparison with BenchmarkValidate.
func BenchmarkValidateZT1(b *testing.B) {
	bin := os.Getenv("ZT1_BIN")
	if bin == "" {
		b.Skip("ZT1_BIN not set")
	}
	id, _ := Generate(context.Background())
	f := filepath.Join(b.TempDir(), "id.public")
	os.WriteFile(f, []byte(id.String()), 0o644)
	for b.Loop() {
		if err := exec.Command(bin, "-i", "validate", f).Run(); err != nil {
			b.Fatal(err)
		}
	}
}
