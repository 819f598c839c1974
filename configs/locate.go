package configs

import (
	"regexp"
	"strconv"
	"strings"
)

// locator maps dotted key paths to the line where they are set. BurntSushi/toml
// reports lines for syntax and type errors but not for keys that decode fine
// and are then unknown or invalid; a light scan of the text recovers them.
// It understands [table], [[array.of.tables]] and key = value lines, which is
// all the relay's files use; anything it cannot place reports line 0.
type locator struct {
	lines map[string]int // "port[1].mtu" and "port.mtu" (first element) -> line
}

var (
	reArrayTable = regexp.MustCompile(`^\[\[\s*([A-Za-z0-9_.\-"' ]+?)\s*\]\]`)
	reTable      = regexp.MustCompile(`^\[\s*([A-Za-z0-9_.\-"' ]+?)\s*\]`)
	reKey        = regexp.MustCompile(`^([A-Za-z0-9_.\-"' ]+?)\s*=`)
	reIndex      = regexp.MustCompile(`\[\d+\]`)
)

func newLocator(data []byte) *locator {
	l := &locator{lines: map[string]int{}}
	counts := map[string]int{}
	table := ""
	set := func(key string, n int) {
		if _, ok := l.lines[key]; !ok {
			l.lines[key] = n
		}
		if plain := reIndex.ReplaceAllString(key, ""); plain != key {
			if _, ok := l.lines[plain]; !ok {
				l.lines[plain] = n
			}
		}
	}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case reArrayTable.MatchString(line):
			name := clean(reArrayTable.FindStringSubmatch(line)[1])
			table = name + "[" + strconv.Itoa(counts[name]) + "]"
			counts[name]++
			set(table, n)
		case reTable.MatchString(line):
			table = clean(reTable.FindStringSubmatch(line)[1])
			set(table, n)
		case reKey.MatchString(line):
			key := clean(reKey.FindStringSubmatch(line)[1])
			if table != "" {
				key = table + "." + key
			}
			set(key, n)
		}
	}
	return l
}

func clean(s string) string {
	return strings.NewReplacer(`"`, "", `'`, "", " ", "").Replace(s)
}

// line returns the line of key, trying less precise forms of it: without a
// trailing array index (an element of an inline array), without any index,
// then the enclosing tables.
func (l *locator) line(key string) int {
	for k := key; k != ""; {
		if n, ok := l.lines[k]; ok {
			return n
		}
		if n, ok := l.lines[reIndex.ReplaceAllString(k, "")]; ok {
			return n
		}
		switch {
		case strings.HasSuffix(k, "]"):
			k = k[:strings.LastIndex(k, "[")]
		case strings.Contains(k, "."):
			k = k[:strings.LastIndex(k, ".")]
		default:
			k = ""
		}
	}
	return 0
}
