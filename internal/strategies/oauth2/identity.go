package oauth2

import (
	"github.com/authgateway/authgateway/internal/introspect"
	"github.com/authgateway/authgateway/internal/strategies"
)

// identity turns an introspection answer into an identity. The answer comes
// from a shared cache and is only read.
func (s *Strategy) identity(res *introspect.Result) (*strategies.Identity, error) {
	id := &strategies.Identity{Subject: res.Subject, ClientID: res.ClientID, Strategy: s.name, ExpiresAt: res.ExpiresAt, Claims: res.Claims()}
	if id.ClientID == "" {
		id.ClientID, _ = res.Extra["azp"].(string)
	}
	// A client-credentials token has no user: its subject is the client.
	if id.Subject == "" {
		id.Subject = id.ClientID
	}
	if id.Subject == "" {
		return nil, strategies.Invalid(strategies.ReasonMissingSub, nil)
	}
	if len(s.scopesPath) == 1 && s.scopesPath[0] == "scope" {
		id.Scopes = res.Scopes()
	} else {
		id.Scopes = strategies.StringList(claim(res, s.scopesPath))
	}
	id.Roles = s.rolesPaths.StringsFrom(func(p strategies.ClaimPath) any { return claim(res, p) })
	if !strategies.EmailUnverified(res.Extra) {
		id.Email, _ = claim(res, s.emailPath).(string)
	}
	id.TokenID, _ = res.Extra["jti"].(string)
	return id, nil
}

// claim reads a (dotted) member of an introspection answer: the members
// Result has fields for, or a path into Extra.
func claim(res *introspect.Result, path strategies.ClaimPath) any {
	if len(path) == 1 {
		switch path[0] {
		case "sub":
			return res.Subject
		case "client_id":
			return res.ClientID
		case "scope":
			return res.Scope
		case "username":
			return res.Username
		}
	}
	return path.Lookup(res.Extra)
}
