package apikey

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
)

var testPrefixes = []string{"pk_live", "pk_test", "pk"}

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for _, prefix := range []string{"pk_live", "pk_test", "pk", "a", "X_y_Z9"} {
		t.Run(prefix, func(t *testing.T) {
			for range 50 {
				key, err := Generate(prefix)
				if err != nil {
					t.Fatal(err)
				}
				if want := len(prefix) + 1 + 43; len(key) != want {
					t.Fatalf("len(%q) = %d; want %d", key, len(key), want)
				}
				if !strings.HasPrefix(key, prefix+"_") {
					t.Fatalf("key %q does not start with %q", key, prefix+"_")
				}
				secret := key[len(prefix)+1:]
				b, err := base64.RawURLEncoding.DecodeString(secret)
				if err != nil || len(b) != 32 {
					t.Fatalf("secret %q decodes to %d bytes, %v; want 32", secret, len(b), err)
				}
				got, err := Parse(key, []string{prefix})
				if err != nil || got != prefix {
					t.Fatalf("Parse(Generate) = %q, %v; want %q", got, err, prefix)
				}
				if seen[key] {
					t.Fatalf("duplicate key %q", key)
				}
				seen[key] = true
			}
		})
	}
}

func TestGenerateRejectsBadPrefix(t *testing.T) {
	for _, p := range []string{"", "_pk", "pk_", "pk-live", "pk live", "pk.live", "é", strings.Repeat("a", MaxPrefixLen+1), "pk\n"} {
		if key, err := Generate(p); err == nil {
			t.Errorf("Generate(%q) = %q; want an error", p, key)
		}
	}
}

func TestHash(t *testing.T) {
	// SHA-256("abc") from FIPS 180-2.
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := Hash("abc"); got != want {
		t.Errorf("Hash(abc) = %s; want %s", got, want)
	}
	key := mustGenerate(t, "pk_live")
	if Hash(key) == Hash(key[len("pk_live_"):]) {
		t.Error("hash ignores the prefix; want the hash of the whole key")
	}
}

func TestParse(t *testing.T) {
	valid := mustGenerate(t, "pk_live")
	secret := valid[len("pk_live_"):]
	short := mustGenerate(t, "pk")
	tests := []struct {
		name       string
		key        string
		prefixes   []string
		wantPrefix string // "" means ErrMalformed
	}{
		{"valid", valid, testPrefixes, "pk_live"},
		{"prefix that is a prefix of another", short, testPrefixes, "pk"},
		{"only the longer prefix configured", short, []string{"pk_live"}, ""},
		{"valid with underscore secret", "pk_" + "live_" + secret[5:], []string{"pk"}, "pk"},
		{"unconfigured prefix", "sk_live_" + secret, testPrefixes, ""},
		{"prefix in other case", "PK_LIVE_" + secret, testPrefixes, ""},
		{"no prefixes configured", valid, nil, ""},
		{"empty", "", testPrefixes, ""},
		{"prefix only", "pk_live_", testPrefixes, ""},
		{"secret only", secret, testPrefixes, ""},
		{"missing separator", "pk_live" + secret, testPrefixes, ""},
		{"dash separator", "pk_live-" + secret, testPrefixes, ""},
		{"one char short", valid[:len(valid)-1], testPrefixes, ""},
		{"one char long", valid + "A", testPrefixes, ""},
		{"trailing newline", valid + "\n", testPrefixes, ""},
		{"newline inside", valid[:20] + "\n" + valid[21:], testPrefixes, ""},
		{"carriage return inside", valid[:20] + "\r" + valid[21:], testPrefixes, ""},
		{"leading space", " " + valid[1:], testPrefixes, ""},
		{"std base64 plus", valid[:len(valid)-2] + "+" + valid[len(valid)-1:], testPrefixes, ""},
		{"std base64 slash", valid[:len(valid)-2] + "/" + valid[len(valid)-1:], testPrefixes, ""},
		{"padding", valid[:len(valid)-1] + "=", testPrefixes, ""},
		{"NUL", valid[:len(valid)-2] + "\x00" + valid[len(valid)-1:], testPrefixes, ""},
		{"non-ASCII same byte length", valid[:len(valid)-3] + "é" + valid[len(valid)-1:], testPrefixes, ""},
		{"non-ASCII in prefix", "pk_livé_" + secret[1:], testPrefixes, ""},
		{"invalid UTF-8", valid[:len(valid)-1] + "\xff", testPrefixes, ""},
		// 43 chars carry 258 bits; the 2 spare bits of the last char must be
		// zero, or two spellings would name the same 32 bytes.
		{"non-canonical last char", valid[:len(valid)-1] + nonCanonical(valid[len(valid)-1]), testPrefixes, ""},
		{"10 KB", "pk_live_" + strings.Repeat("A", 10<<10), testPrefixes, ""},
		{"10 KB ending in a valid key", strings.Repeat("x", 10<<10) + valid, testPrefixes, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.key, tt.prefixes)
			if tt.wantPrefix == "" {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Parse = %q, %v; want ErrMalformed", got, err)
				}
				return
			}
			if err != nil || got != tt.wantPrefix {
				t.Fatalf("Parse = %q, %v; want %q", got, err, tt.wantPrefix)
			}
		})
	}
}

// nonCanonical returns a base64url character with the same top 4 bits as c
// but non-zero low 2 bits.
func nonCanonical(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return string(alphabet[i|1])
}

func FuzzParse(f *testing.F) {
	f.Add(mustGenerateF(f, "pk_live"))
	f.Add(mustGenerateF(f, "pk"))
	f.Add("pk_live_")
	f.Add("")
	f.Add("pk_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")
	f.Add("pk_test_" + strings.Repeat("_", 43))
	f.Fuzz(func(t *testing.T, key string) {
		prefix, err := Parse(key, testPrefixes)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v is not ErrMalformed", err)
			}
			return
		}
		if !slices.Contains(testPrefixes, prefix) {
			t.Fatalf("prefix %q not configured", prefix)
		}
		secret, ok := strings.CutPrefix(key, prefix+"_")
		if !ok || len(secret) != 43 {
			t.Fatalf("accepted %q: prefix %q and a secret of %d chars", key, prefix, len(secret))
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(secret)
		if err != nil || len(b) != 32 {
			t.Fatalf("accepted secret %q decodes to %d bytes, %v", secret, len(b), err)
		}
		// Exactly one spelling per 32 bytes.
		if again := base64.RawURLEncoding.EncodeToString(b); again != secret {
			t.Fatalf("accepted non-canonical secret %q (canonical %q)", secret, again)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	key := mustGenerateF(b, "pk_live")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(key, testPrefixes); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseMalformed10KB(b *testing.B) {
	key := strings.Repeat("A", 10<<10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(key, testPrefixes); err == nil {
			b.Fatal("accepted")
		}
	}
}

func mustGenerate(t *testing.T, prefix string) string {
	t.Helper()
	return mustGenerateF(t, prefix)
}

func mustGenerateF(tb testing.TB, prefix string) string {
	tb.Helper()
	k, err := Generate(prefix)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
