package policy

import (
	"errors"

	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// provider adds the identity and request object types to cel-go's
// registry. Their fields are read straight from the Input by getters: no
// reflection, no map of fields per request.
type provider struct {
	types.Provider
	fields map[string]map[string]*types.FieldType
	names  map[string][]string
}

func newProvider(reg *types.Registry) *provider {
	p := &provider{Provider: reg, fields: map[string]map[string]*types.FieldType{}, names: map[string][]string{}}
	for typ, fields := range objects() {
		p.fields[typ] = map[string]*types.FieldType{}
		for name, f := range fields {
			p.fields[typ][name] = &types.FieldType{
				Type: f.typ,
				// has(identity.email) is true when the field is not empty,
				// as for a proto3 scalar.
				IsSet: func(target any) bool {
					in, ok := inputOf(target)
					if !ok {
						return false
					}
					return isSet(f.get(in, reg))
				},
				GetFrom: func(target any) (any, error) {
					in, ok := inputOf(target)
					if !ok {
						return nil, errNotInput
					}
					return f.get(in, reg), nil
				},
			}
			p.names[typ] = append(p.names[typ], name)
		}
	}
	return p
}

var errNotInput = errors.New("no such object")

// inputOf returns the Input behind an identity or request object.
func inputOf(target any) (*Input, bool) {
	switch t := target.(type) {
	case *identityObj:
		return (*Input)(t), true
	case *requestObj:
		return (*Input)(t), true
	}
	return nil, false
}

// isSet reports a value that is not its type's zero: a non-empty string,
// list or map.
func isSet(v ref.Val) bool {
	switch v := v.(type) {
	case types.String:
		return v != ""
	case interface{ Size() ref.Val }:
		return v.Size() != types.IntZero
	}
	return true
}

// FindStructType implements types.Provider.
func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if _, ok := p.fields[name]; ok {
		return types.NewTypeTypeWithParam(types.NewObjectType(name)), true
	}
	return p.Provider.FindStructType(name)
}

// FindStructFieldNames implements types.Provider.
func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if names, ok := p.names[name]; ok {
		return names, true
	}
	return p.Provider.FindStructFieldNames(name)
}

// FindStructFieldType implements types.Provider.
func (p *provider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if fields, ok := p.fields[name]; ok {
		f, ok := fields[field]
		return f, ok
	}
	return p.Provider.FindStructFieldType(name, field)
}

// NewValue implements types.Provider: identity and request cannot be built
// in an expression.
func (p *provider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.fields[name]; ok {
		return types.NewErr("%s cannot be constructed", name)
	}
	return p.Provider.NewValue(name, fields)
}

// sizeEstimator leaves every size unknown: the static estimate then gives
// the cost of an expression's cheapest path, which Compile checks.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(checker.AstNode) *checker.SizeEstimate { return nil }
func (sizeEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}
