package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A YAML parser reports a mis-indented key where its grammar gave up, which is
// often the line of the enclosing block ("line 24: did not find expected '-'
// indicator" for a key on line 36), and in its own words. syntaxProblem looks
// at the lines the way a person would and names the line that breaks the
// block structure: a tab in the indentation, a key that does not line up with
// the other keys of its mapping, a key where a list item ("- ") belongs, a
// bracket or quote that is never closed. What it cannot place keeps the
// parser's line, in plainer words.

// syntaxProblem explains err, a YAML syntax error in data (the file as
// parsed, with ${VAR} references already replaced by plain words).
func (l *loader) syntaxProblem(data []byte, err error) Problem {
	if p, ok := scanBlocks(data); ok {
		p.File = l.file
		return p
	}
	p := l.yamlError(err)
	p.Message = plainSyntaxMessage(p.Message)
	return p
}

// parserWords turns the parser's messages into what to look for.
var parserWords = []struct {
	re  *regexp.Regexp
	say string
}{
	{regexp.MustCompile(`^mapping values are not allowed in this context`), "a `key: value` cannot start here: check this line's indentation against the line above, and quote a value that contains \": \""},
	{regexp.MustCompile(`^did not find expected key`), "this line does not continue the block above it: check its indentation"},
	{regexp.MustCompile(`^did not find expected '-' indicator`), "expected a list item (\"- \") here: check the indentation of the lines below"},
	{regexp.MustCompile(`^found character that cannot start any token`), "a value cannot start with this character (a tab, @ or `): quote the value, and indent with spaces"},
	{regexp.MustCompile(`^found a tab character`), "tab character; YAML indents with spaces"},
	{regexp.MustCompile(`^did not find expected ',' or ']'`), "a [ ... ] list is not closed, or an item in it needs quotes"},
	{regexp.MustCompile(`^did not find expected ',' or '}'`), "a { ... } mapping is not closed, or a value in it needs quotes"},
	{regexp.MustCompile(`^found unexpected end of stream`), "the file ends inside a quoted value or a [ ] / { } block: check the quotes and brackets"},
	{regexp.MustCompile(`^could not find expected ':'`), "expected `key: value` (a colon and a space) here"},
}

func plainSyntaxMessage(msg string) string {
	for _, w := range parserWords {
		if w.re.MatchString(msg) {
			return w.say
		}
	}
	return "YAML syntax: " + msg
}

// level is one open block while scanning: a mapping whose keys, or a list
// whose "- " items, sit at column col.
type level struct {
	col      int
	list     bool
	path     string // YAML path of the block ("routes", "routes[1]")
	items    int    // list: items seen so far
	lastKey  string // mapping: the last key, and its line
	lastLine int
}

// blockLine is one content line of a block-style YAML document.
type blockLine struct {
	n      int    // line number
	col    int    // indentation in spaces
	dash   bool   // starts a list item ("- ")
	keyCol int    // column of the key, if any
	key    string // "" when the line holds no `key:`
	opens  bool   // ends in "key:" or "-" with nothing after: a nested block follows
	tab    bool   // a tab in the indentation
	text   string // the line without its indentation and "- "
}

// scanBlocks reports the first line whose indentation contradicts the block
// structure above it. It reads block-style YAML only: flow collections ([ ]
// and { }), quoted values and block scalars (| and >) are skipped over as
// values, and a line it cannot read ends the scan without a verdict.
func scanBlocks(data []byte) (Problem, bool) {
	lines := strings.Split(string(data), "\n")
	stack := []*level{{col: 0}}
	var pending *level // the block a line ending in ":" or "-" opened
	for i := 0; i < len(lines); i++ {
		bl, skip, ok := readLine(i+1, strings.TrimRight(lines[i], "\r"))
		if !ok {
			return Problem{}, false
		}
		if skip {
			continue
		}
		if bl.tab {
			return Problem{Line: bl.n, Message: "tab character; YAML indents with spaces"}, true
		}
		if stack[0].lastLine == 0 {
			// The first line sets the document's own indentation.
			stack[0].col, stack[0].list = bl.col, bl.dash
		}
		var p Problem
		var bad bool
		if stack, pending, p, bad = step(stack, pending, bl); bad {
			return p, true
		}
		// A value that goes on over the lines below (a quoted string, a
		// flow collection, a block scalar): skip those lines.
		end, closed, what := continuation(lines, i, bl)
		if !closed {
			path := stack[len(stack)-1].path
			if bl.key != "" {
				path = join(path, bl.key)
			}
			return Problem{Line: bl.n, Path: path, Message: what + " opened on this line is never closed"}, true
		}
		i = end
	}
	return Problem{}, false
}

// step places one line in the open blocks: it opens, continues or closes
// blocks, or reports the line that fits none of them.
func step(stack []*level, pending *level, bl blockLine) ([]*level, *level, Problem, bool) {
	if pending != nil {
		if (bl.dash && bl.col >= pending.col) || (!bl.dash && bl.col > pending.col) {
			stack = append(stack, &level{col: bl.col, list: bl.dash, path: pending.path})
			return place(stack, bl)
		}
		// The key's value is empty; the line belongs further out.
	}
	top := stack[len(stack)-1]
	if bl.col > top.col {
		if !bl.dash && bl.key == "" && !top.list {
			return stack, nil, Problem{}, false // a plain value continued on this line
		}
		return stack, nil, deeper(top, bl), true
	}
	var popped *level
	for len(stack) > 1 && stack[len(stack)-1].col > bl.col {
		popped = stack[len(stack)-1]
		stack = stack[:len(stack)-1]
	}
	if top = stack[len(stack)-1]; top.col != bl.col {
		return stack, nil, between(popped, top, bl), true
	}
	return place(stack, bl)
}

// place adds a line that sits at the column of the innermost open block,
// and returns the block the line opens, if any.
func place(stack []*level, bl blockLine) ([]*level, *level, Problem, bool) {
	top := stack[len(stack)-1]
	switch {
	case bl.dash && !top.list:
		return stack, nil, Problem{Line: bl.n, Path: top.path, Message: fmt.Sprintf(
			"a list item (\"- \") among the keys of %s (`%s` on line %d): indent it under the key it belongs to",
			describe(top.path), top.lastKey, top.lastLine)}, true
	case !bl.dash && top.list:
		return stack, nil, Problem{Line: bl.n, Path: top.path, Message: fmt.Sprintf(
			"`%s` is at the column of the \"- \" items of %s: start a new item with \"- \", or indent it like the keys of the item above",
			bl.key, describe(top.path))}, true
	case bl.dash:
		item := top.path + "[" + strconv.Itoa(top.items) + "]"
		top.items++
		top.lastLine = bl.n
		if bl.key == "" {
			if bl.opens {
				return stack, &level{col: bl.col, path: item}, Problem{}, false
			}
			return stack, nil, Problem{}, false
		}
		// The item is a mapping whose keys sit after the dash.
		stack = append(stack, &level{col: bl.keyCol, path: item, lastKey: bl.key, lastLine: bl.n})
		if bl.opens {
			return stack, &level{col: bl.keyCol, path: join(item, bl.key)}, Problem{}, false
		}
	case bl.key == "" && noSpaceRe.MatchString(bl.text):
		k, v, _ := strings.Cut(bl.text, ":")
		return stack, nil, Problem{Line: bl.n, Path: join(top.path, k), Message: fmt.Sprintf(
			"a key needs a space after its colon: %s: %s", k, v)}, true
	case bl.key == "":
		return stack, nil, Problem{Line: bl.n, Path: top.path, Message: fmt.Sprintf(
			"this line is not a `key: value` among the keys of %s: add the key, or indent it under the value it continues",
			describe(top.path))}, true
	default:
		top.lastKey, top.lastLine = bl.key, bl.n
		if bl.opens {
			return stack, &level{col: bl.col, path: join(top.path, bl.key)}, Problem{}, false
		}
	}
	return stack, nil, Problem{}, false
}

// deeper explains a line indented past the block it continues.
func deeper(top *level, bl blockLine) Problem {
	p := Problem{Line: bl.n, Path: top.path}
	switch {
	case top.list:
		p.Message = fmt.Sprintf("indented %s, past the \"- \" items of %s (%d, line %d): line it up with them, or put it in an item",
			spaces(bl.col), describe(top.path), top.col, top.lastLine)
	case bl.dash:
		p.Message = fmt.Sprintf("a list item indented under `%s` (line %d), which already has a value on its own line",
			top.lastKey, top.lastLine)
	default:
		p.Path = join(top.path, bl.key)
		p.Message = fmt.Sprintf("`%s` is indented more than the other keys of %s (%s, not %d as `%s` on line %d)",
			bl.key, describe(top.path), spaces(bl.col), top.col, top.lastKey, top.lastLine)
	}
	return p
}

// between explains a line that closes a block (inner) but does not line up
// with the block around it (outer) either.
func between(inner, outer *level, bl blockLine) Problem {
	if inner == nil {
		return Problem{Line: bl.n, Message: "this line is not lined up with the lines above it: check its indentation"}
	}
	p := Problem{Line: bl.n, Path: inner.path}
	if bl.dash {
		list := inner
		if !list.list {
			list = outer
		}
		if list.list {
			p.Path = list.path
			p.Message = fmt.Sprintf("this \"- \" item is indented %s, not %d as the other items of %s (line %d)",
				spaces(bl.col), list.col, describe(list.path), list.lastLine)
			return p
		}
	}
	if bl.key != "" && !inner.list {
		p.Path = join(inner.path, bl.key)
		p.Message = fmt.Sprintf("`%s` is indented less than the other keys of %s (%s, not %d as `%s` on line %d)",
			bl.key, describe(inner.path), spaces(bl.col), inner.col, inner.lastKey, inner.lastLine)
		return p
	}
	p.Message = fmt.Sprintf("this line is indented %s: less than the block above it (%d) and more than %s (%d)",
		spaces(bl.col), inner.col, describe(outer.path), outer.col)
	return p
}

func spaces(n int) string {
	if n == 1 {
		return "1 space"
	}
	return strconv.Itoa(n) + " spaces"
}

// noSpaceRe matches "key:value", a key and value without the space YAML
// needs between them.
var noSpaceRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*:[^\s/]`)

var itemPathRe = regexp.MustCompile(`^(routes|tokens\.signing_keys)\[\d+\]$`)

// describe names a block for a message: "this route", "server".
func describe(path string) string {
	switch {
	case path == "":
		return "the top level"
	case itemPathRe.MatchString(path) && strings.HasPrefix(path, "routes"):
		return "this route"
	case itemPathRe.MatchString(path):
		return "this signing key"
	case strings.HasPrefix(path, "strategies.") && !strings.Contains(path[len("strategies."):], "."):
		return "this strategy"
	}
	return path
}

// readLine splits one line into its block-structure parts. skip is true for
// blank lines, comments and document markers; ok is false for a line the
// scan cannot read (a directive, a complex key).
func readLine(n int, raw string) (bl blockLine, skip, ok bool) {
	bl.n = n
	i := 0
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t') {
		if raw[i] == '\t' {
			bl.tab = true
		}
		i++
	}
	rest := raw[i:]
	if rest == "" || strings.HasPrefix(rest, "#") {
		return bl, true, true
	}
	if bl.tab {
		return bl, false, true
	}
	if i == 0 && strings.HasPrefix(rest, "%") {
		return bl, false, false // a directive
	}
	if i == 0 && (rest == "---" || rest == "..." || strings.HasPrefix(rest, "--- ")) {
		return bl, true, true
	}
	if strings.HasPrefix(rest, "? ") {
		return bl, false, false
	}
	bl.col = i
	if rest == "-" || strings.HasPrefix(rest, "- ") {
		bl.dash = true
		j := 1
		for j < len(rest) && rest[j] == ' ' {
			j++
		}
		bl.keyCol = i + j
		rest = rest[j:]
		if rest == "" || strings.HasPrefix(rest, "#") {
			bl.opens = true
			return bl, false, true
		}
		if rest == "-" || strings.HasPrefix(rest, "- ") {
			return bl, false, false // a list in a list on one line
		}
	} else {
		bl.keyCol = i
	}
	bl.text = rest
	key, value, isKey := splitKey(rest)
	if isKey {
		bl.key = key
		v := strings.TrimSpace(stripComment(value))
		bl.opens = v == "" || isAnchorOnly(v)
	}
	return bl, false, true
}

// splitKey finds "key: value" or "key:" in s, outside quotes and brackets.
func splitKey(s string) (key, value string, ok bool) {
	if s == "" || strings.ContainsRune("[{|>*", rune(s[0])) {
		return "", "", false
	}
	if s[0] == '"' || s[0] == '\'' {
		end := closingQuote(s, 0)
		if end < 0 || end+1 >= len(s) || s[end+1] != ':' {
			return "", "", false
		}
		if end+2 < len(s) && s[end+2] != ' ' {
			return "", "", false
		}
		return s[1:end], s[end+2:], true
	}
	for j := 0; j < len(s); j++ {
		switch s[j] {
		case ':':
			if j+1 == len(s) || s[j+1] == ' ' {
				return strings.TrimSpace(s[:j]), s[j+1:], true
			}
		case '#':
			if j > 0 && s[j-1] == ' ' {
				return "", "", false
			}
		}
	}
	return "", "", false
}

func isAnchorOnly(v string) bool {
	return (v[0] == '&' || v[0] == '!') && !strings.Contains(v, " ")
}

// closingQuote returns the index of the quote that closes the one at s[i],
// or -1 when the line ends first.
func closingQuote(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case q == '"' && s[j] == '\\':
			j++
		case s[j] == q && q == '\'' && j+1 < len(s) && s[j+1] == '\'':
			j++ // '' is an escaped quote
		case s[j] == q:
			return j
		}
	}
	return -1
}

// stripComment drops a trailing " # comment" outside quotes.
func stripComment(v string) string {
	for j := 0; j < len(v); j++ {
		switch v[j] {
		case '"', '\'':
			if e := closingQuote(v, j); e > 0 {
				j = e
			} else {
				return v
			}
		case '#':
			if j == 0 || v[j-1] == ' ' {
				return v[:j]
			}
		}
	}
	return v
}

// continuation finds where a value that starts on line i (a quoted string, a
// [ ] or { } collection, a | or > block scalar) ends: the index of its last
// line, whether it was closed before the end of the file, and what opened it.
func continuation(lines []string, i int, bl blockLine) (end int, closed bool, what string) {
	value := strings.TrimRight(lines[i], "\r")[bl.keyCol:]
	if bl.key != "" {
		_, value, _ = splitKey(value)
	}
	value = strings.TrimSpace(value)
	if value == "" {
		return i, true, ""
	}
	switch value[0] {
	case '|', '>':
		// A block scalar: every following line indented past the key's
		// line (or blank) belongs to it.
		j := i + 1
		for ; j < len(lines); j++ {
			l := strings.TrimRight(lines[j], "\r")
			if strings.TrimSpace(l) != "" && len(l)-len(strings.TrimLeft(l, " ")) <= bl.col {
				break
			}
		}
		return j - 1, true, ""
	case '"', '\'':
		if closingQuote(value, 0) > 0 {
			return i, true, ""
		}
		// A quoted value may go on over several lines, but when the quote
		// that closes it is followed by more text, that quote opened the
		// next value: this one was never closed.
		q := value[0]
		for j := i + 1; j < len(lines); j++ {
			s := string(q) + strings.TrimRight(lines[j], "\r")
			if e := closingQuote(s, 0); e > 0 {
				if after := strings.TrimSpace(s[e+1:]); after != "" && after[0] != '#' {
					return j, false, "the quote"
				}
				return j, true, ""
			}
		}
		return len(lines) - 1, false, "the quote"
	case '[', '{':
		what := map[byte]string{'[': "the [ list", '{': "the { mapping"}[value[0]]
		depth := 0
		for j := i; j < len(lines); j++ {
			s := strings.TrimRight(lines[j], "\r")
			if j == i {
				s = value
			}
			for k := 0; k < len(s); k++ {
				switch c := s[k]; {
				case c == '"' || c == '\'':
					// A quote opens a quoted scalar only where a value starts.
					if prev := strings.TrimRight(s[:k], " "); prev == "" || strings.ContainsRune("[{,:", rune(prev[len(prev)-1])) {
						e := closingQuote(s, k)
						if e < 0 {
							return len(lines) - 1, false, "the quote"
						}
						k = e
					}
				case c == '#' && (k == 0 || s[k-1] == ' '):
					k = len(s)
				case c == '[' || c == '{':
					depth++
				case c == ']' || c == '}':
					depth--
				}
			}
			if depth <= 0 {
				return j, true, ""
			}
		}
		return len(lines) - 1, false, what
	}
	return i, true, ""
}
