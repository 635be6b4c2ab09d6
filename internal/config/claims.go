package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ClaimNames are (dotted) claim names read together, as one value or a
// list: `roles_claim: roles` or `roles_claim: [realm_access.roles, groups]`
// (the union of their values).
type ClaimNames []string

// UnmarshalYAML reads one claim name or a list of them.
func (c *ClaimNames) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*c = ClaimNames{strings.TrimSpace(n.Value)}
		return nil
	case yaml.SequenceNode:
		out := make(ClaimNames, 0, len(n.Content))
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode || strings.TrimSpace(item.Value) == "" {
				return fmt.Errorf("line %d: want claim names like realm_access.roles", item.Line)
			}
			out = append(out, strings.TrimSpace(item.Value))
		}
		*c = out
		return nil
	}
	return fmt.Errorf("line %d: want a claim name or a list of them", n.Line)
}
