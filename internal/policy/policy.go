// Package policy compiles and evaluates a route's allow_if: a CEL expression
// (github.com/google/cel-go) over the authenticated identity, the request
// and the time, checked against declared types when the config is loaded
// and evaluated after roles and scopes. False or an evaluation error denies.
package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
)

// CostLimit bounds the work of one evaluation, in CEL cost units (about one
// per comparison, field read or list element visited; string operations by
// length). An expression whose cheapest path goes over it is refused at
// load; one with a loop (all, exists, map, ...) that a request drives over
// it stops with an error, which denies: no request can make the gateway
// loop over a large list or header map for long. 10,000 units is some
// tens of microseconds of work, and far more than a policy over roles,
// claims and headers needs.
const CostLimit = 10_000

// maxExpressionSize bounds the source of an expression (code points), and
// maxNesting the comprehensions (all, exists, map, filter) nested in one
// another: both keep checking and evaluation cheap.
const (
	maxExpressionSize = 4096
	maxNesting        = 2
)

// Env is the CEL environment of allow_if: the variables identity, request
// and now with their declared types, the standard functions, and ip_in.
// It is immutable and safe for concurrent use.
type Env struct {
	env *cel.Env
}

// NewEnv builds the environment.
func NewEnv() (*Env, error) {
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, fmt.Errorf("building cel type registry: %w", err)
	}
	env, err := cel.NewEnv(
		cel.CustomTypeProvider(newProvider(reg)),
		cel.CustomTypeAdapter(reg),
		cel.Variable("identity", cel.ObjectType(identityType)),
		cel.Variable("request", cel.ObjectType(requestType)),
		cel.Variable("now", cel.TimestampType),
		ipInFunction(),
		cel.ParserExpressionSizeLimit(maxExpressionSize),
		cel.ASTValidators(
			cel.ValidateDurationLiterals(),
			cel.ValidateTimestampLiterals(),
			cel.ValidateRegexLiterals(),
			cel.ValidateHomogeneousAggregateLiterals(),
			cel.ValidateComprehensionNestingLimit(maxNesting),
			cidrLiteralValidator{},
		),
	)
	if err != nil {
		return nil, fmt.Errorf("building cel environment: %w", err)
	}
	return &Env{env: env}, nil
}

// Program is one compiled allow_if expression: safe for concurrent use.
type Program struct {
	source string
	prg    cel.Program
}

// Source is the expression as written in the config.
func (p *Program) Source() string { return p.source }

// Compile parses and type-checks src and plans its evaluation. The error
// lists every problem, each at its line and column in the expression: a
// syntax error, an unknown variable, field or function, a type mismatch
// (identity.email + 1), a result that is not a bool, an invalid CIDR or
// regular expression literal, an expression over the cost limit.
func (e *Env) Compile(src string) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty expression")
	}
	checked, iss := e.env.Compile(src)
	if err := iss.Err(); err != nil {
		return nil, issuesError(iss)
	}
	if !checked.OutputType().IsExactType(types.BoolType) {
		return nil, fmt.Errorf("must be a bool expression, is %s (compare a dyn claim explicitly: identity.claims.admin == true)", checked.OutputType())
	}
	est, err := e.env.EstimateCost(checked, sizeEstimator{})
	if err != nil {
		return nil, fmt.Errorf("estimating cost: %w", err)
	}
	if est.Min > CostLimit {
		return nil, fmt.Errorf("too costly: at least %d cost units per request, the limit is %d", est.Min, CostLimit)
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)} // constant folding, regexes compiled once
	if hasComprehension(checked) {
		opts = append(opts, cel.CostLimit(CostLimit))
	}
	prg, err := e.env.Program(checked, opts...)
	if err != nil {
		return nil, fmt.Errorf("planning: %w", err)
	}
	return &Program{source: src, prg: prg}, nil
}

// hasComprehension reports whether the expression loops (all, exists,
// exists_one, map, filter). Only a loop makes an expression's work grow
// with the product of its inputs' sizes; without one it is a fixed number
// of operations, each at most linear in a value the gateway already
// bounds (headers, a token's claims). Tracking the cost at run time
// doubles an evaluation's time, so it is done for loops only.
func hasComprehension(a *cel.Ast) bool {
	return len(ast.MatchDescendants(ast.NavigateAST(a.NativeRep()), ast.KindMatcher(ast.ComprehensionKind))) > 0
}

// issuesError is the checker's issues, each at its place in the
// expression (the column, and the line of a multi-line one), without the
// source excerpt cel-go adds: the caller gives the config's file and line.
func issuesError(iss *cel.Issues) error {
	var b strings.Builder
	for i, e := range iss.Errors() {
		if i > 0 {
			b.WriteString("; ")
		}
		if l := e.Location.Line(); l > 1 {
			fmt.Fprintf(&b, "line %d, ", l)
		}
		msg := strings.TrimSuffix(e.Message, " (in container '')")
		fmt.Fprintf(&b, "column %d: %s", e.Location.Column()+1, msg)
	}
	return errors.New(b.String())
}

// ErrNotBool is an evaluation whose result is not a bool (a dyn value the
// checker could not type); it denies.
var ErrNotBool = errors.New("result is not a bool")

// Eval evaluates the program over in: true allows; false, or an error
// (a missing claim, a bad address given to ip_in, the cost limit), denies.
func (p *Program) Eval(in *Input) (bool, error) {
	out, _, err := p.prg.Eval(in)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, ErrNotBool
	}
	return bool(b), nil
}

// Compiler compiles the expressions of one config generation, each text
// once: routes sharing an expression share its Program.
type Compiler struct {
	env   *Env
	cache map[string]*Program
}

// NewCompiler returns a Compiler over env.
func NewCompiler(env *Env) *Compiler {
	return &Compiler{env: env, cache: map[string]*Program{}}
}

// Compile returns src's Program, compiling it the first time.
func (c *Compiler) Compile(src string) (*Program, error) {
	if p, ok := c.cache[src]; ok {
		return p, nil
	}
	p, err := c.env.Compile(src)
	if err != nil {
		return nil, err
	}
	c.cache[src] = p
	return p, nil
}
