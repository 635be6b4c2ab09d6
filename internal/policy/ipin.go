package policy

import (
	"fmt"
	"net/netip"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// ipInFunction declares ip_in(ip, cidr): whether the address ip lies in the
// network cidr ("10.0.0.0/8", "2001:db8::/32"). An IPv4-mapped IPv6 address
// counts as its IPv4 address. An ip or cidr that does not parse is an error,
// which denies; a cidr written as a literal is checked when the config loads.
func ipInFunction() cel.EnvOption {
	return cel.Function("ip_in",
		cel.Overload("ip_in_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
			cel.BinaryBinding(ipIn)))
}

func ipIn(ipv, cidrv ref.Val) ref.Val {
	ip, ok1 := ipv.(types.String)
	cidr, ok2 := cidrv.(types.String)
	if !ok1 || !ok2 {
		return types.NewErr("ip_in: arguments must be strings")
	}
	addr, err := netip.ParseAddr(string(ip))
	if err != nil {
		return types.NewErr("ip_in: invalid ip address")
	}
	p, err := parseCIDR(string(cidr))
	if err != nil {
		// Not the value: it may come from the request, and errors are
		// shown by explain.
		return types.NewErr("ip_in: invalid cidr")
	}
	return types.Bool(p.Contains(addr.Unmap()))
}

// parseCIDR parses a network. Bits set after the prefix length
// ("10.0.0.1/8") are refused: they suggest a typo for a host or a longer
// prefix, and what was meant cannot be told.
func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid cidr %q", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("cidr %q has bits set after the prefix length (did you mean %s?)", s, m)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("cidr %q is an IPv4-mapped IPv6 network: write it as IPv4", s)
	}
	return p, nil
}

// cidrLiteralValidator reports, at compile time, a literal cidr given to
// ip_in that does not parse.
type cidrLiteralValidator struct{}

func (cidrLiteralValidator) Name() string { return "authgateway.validator.ip_in" }

func (cidrLiteralValidator) Validate(_ *cel.Env, _ cel.ValidatorConfig, a *ast.AST, iss *cel.Issues) {
	for _, call := range ast.MatchDescendants(ast.NavigateAST(a), ast.FunctionMatcher("ip_in")) {
		args := call.AsCall().Args()
		if len(args) != 2 {
			continue
		}
		for i, arg := range args {
			if arg.Kind() != ast.LiteralKind {
				continue
			}
			s, ok := arg.AsLiteral().Value().(string)
			if !ok {
				continue
			}
			var err error
			if i == 0 {
				if _, perr := netip.ParseAddr(s); perr != nil {
					err = fmt.Errorf("invalid ip address %q", s)
				}
			} else {
				_, err = parseCIDR(s)
			}
			if err != nil {
				iss.ReportErrorAtID(arg.ID(), "ip_in: %v", err)
			}
		}
	}
}
