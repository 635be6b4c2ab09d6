package session

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestRefreshRefusesTwoReadings: a refresh token signed with the gateway's
// key whose JSON holds a member twice, or whose header makes an extension
// critical, is refused, even when both readings agree.
func TestRefreshRefusesTwoReadings(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, nil, newClock())
	resign := func(tok string, header func(string) string, payload func(string) string) string {
		parts := strings.Split(tok, ".")
		dec := func(s string) string {
			b, err := base64.RawURLEncoding.DecodeString(s)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		input := base64.RawURLEncoding.EncodeToString([]byte(header(dec(parts[0])))) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(payload(dec(parts[1]))))
		sig, err := jwt.SigningMethodHS256.Sign(input, []byte(testSecret))
		if err != nil {
			t.Fatal(err)
		}
		return input + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	same := func(s string) string { return s }
	more := func(member string) func(string) string {
		return func(s string) string { return strings.TrimSuffix(s, "}") + "," + member + "}" }
	}
	for _, tc := range []struct {
		name            string
		header, payload func(string) string
	}{
		{"sub twice, same value", same, more(`"sub":"` + alice.Subject + `"`)},
		{"type twice", same, more(`"type":"refresh"`)},
		{"typ twice in the header", more(`"typ":"refresh+jwt"`), same},
		{"crit in the header", more(`"crit":["exp"]`), same},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess, err := m.Start(ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Refresh(ctx, resign(sess.Refresh, tc.header, tc.payload)); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v; want ErrInvalidToken", err)
			}
			// The control: the same token re-signed unchanged is good.
			if _, err := m.Refresh(ctx, resign(sess.Refresh, same, same)); err != nil {
				t.Fatalf("the token re-signed unchanged: %v", err)
			}
		})
	}
}
