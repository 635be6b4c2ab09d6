package policy

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"

	"github.com/authgateway/authgateway/internal/strategies"
)

// Input is what one evaluation reads: the variables identity, request and
// now. It is the evaluation's activation itself, and each field of the
// variables is read from it only when the expression reads it: the header
// and query maps are built on first use, so an expression over the
// identity costs no map. An Input serves one request (one goroutine); it
// keeps what it built for further evaluations of the same request.
type Input struct {
	Identity *strategies.Identity // nil: every identity field is empty
	Method   string
	// Path is the canonical path, Host the Host header as the client sent it.
	Path, Host string
	ClientIP   netip.Addr
	// Header is the request's headers, after the gateway removed those a
	// client may not send (X-Auth-*, forwarding headers).
	Header http.Header
	// RawQuery is the query string, without "?".
	RawQuery string
	Now      time.Time

	headers, query, claims ref.Val // built on first use
}

var _ interpreter.Activation = (*Input)(nil)

// ResolveName implements interpreter.Activation.
func (in *Input) ResolveName(name string) (any, bool) {
	switch name {
	case "identity":
		return (*identityObj)(in), true
	case "request":
		return (*requestObj)(in), true
	case "now":
		return types.Timestamp{Time: in.Now}, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (in *Input) Parent() interpreter.Activation { return nil }

// identityObj and requestObj are an Input seen as the identity and request
// objects: their fields are read by the getters of fields below.
type (
	identityObj Input
	requestObj  Input
)

// The declared object types.
const (
	identityType = "authgateway.Identity"
	requestType  = "authgateway.Request"
)

// field is one declared field: its type and how to read it.
type field struct {
	typ *types.Type
	get func(in *Input, a types.Adapter) ref.Val
}

func stringField(get func(in *Input) string) field {
	return field{typ: types.StringType, get: func(in *Input, _ types.Adapter) ref.Val { return types.String(get(in)) }}
}

// identity returns the identity, or an empty one.
func (in *Input) identity() *strategies.Identity {
	if in.Identity == nil {
		return &strategies.Identity{}
	}
	return in.Identity
}

var stringList = types.NewListType(types.StringType)

// objects declares the fields of identity and request (DESIGN.md, "Routes
// that fit real deployments").
func objects() map[string]map[string]field {
	return map[string]map[string]field{
		identityType: {
			"subject":   stringField(func(in *Input) string { return in.identity().Subject }),
			"email":     stringField(func(in *Input) string { return in.identity().Email }),
			"client_id": stringField(func(in *Input) string { return in.identity().ClientID }),
			"strategy":  stringField(func(in *Input) string { return in.identity().Strategy }),
			"roles": {typ: stringList, get: func(in *Input, a types.Adapter) ref.Val {
				return types.NewStringList(a, in.identity().Roles)
			}},
			"scopes": {typ: stringList, get: func(in *Input, a types.Adapter) ref.Val {
				return types.NewStringList(a, in.identity().Scopes)
			}},
			"claims": {typ: types.NewMapType(types.StringType, types.DynType), get: func(in *Input, a types.Adapter) ref.Val {
				if in.claims == nil {
					in.claims = types.NewStringInterfaceMap(a, in.identity().ClaimMap())
				}
				return in.claims
			}},
		},
		requestType: {
			"method": stringField(func(in *Input) string { return in.Method }),
			"path":   stringField(func(in *Input) string { return in.Path }),
			"host":   stringField(func(in *Input) string { return in.Host }),
			"client_ip": stringField(func(in *Input) string {
				if !in.ClientIP.IsValid() {
					return ""
				}
				return in.ClientIP.Unmap().String()
			}),
			"headers": {typ: types.NewMapType(types.StringType, types.StringType), get: func(in *Input, a types.Adapter) ref.Val {
				if in.headers == nil {
					in.headers = types.NewStringStringMap(a, firstHeaders(in.Header))
				}
				return in.headers
			}},
			"query": {typ: types.NewMapType(types.StringType, types.StringType), get: func(in *Input, a types.Adapter) ref.Val {
				if in.query == nil {
					in.query = types.NewStringStringMap(a, firstQuery(in.RawQuery))
				}
				return in.query
			}},
		},
	}
}

// firstHeaders maps each lower-case header name to its first value.
func firstHeaders(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for name, vs := range h {
		if len(vs) == 0 {
			continue
		}
		name = strings.ToLower(name)
		if _, dup := m[name]; !dup { // two spellings of one name: either is "first"
			m[name] = vs[0]
		}
	}
	return m
}

// firstQuery maps each query name to its first value. Pairs that do not
// decode are left out, as Go's own parser does.
func firstQuery(raw string) map[string]string {
	m := map[string]string{}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
	return m
}
