package daemon

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/configs"
)

// An applied configuration sets the log level only when its [log] level
// differs from the running one's: applying the start file again keeps the
// level that start --log-level chose.
func TestLevelChange(t *testing.T) {
	cur, next := configs.Defaults(), configs.Defaults()
	if lvl, ok := levelChange(&cur, &next); ok {
		t.Errorf("unchanged level: set to %v", lvl)
	}
	next.Log.Level = "debug"
	if lvl, ok := levelChange(&cur, &next); !ok || lvl != zerolog.DebugLevel {
		t.Errorf("info to debug: %v %v, want debug", lvl, ok)
	}
}

// TestApplyConfigSections changes every setting of configs.File, one at a
// time, and checks that restartSections refuses the change unless the
// setting is live (a section in liveSections, or the log level): a section
// added to configs.File is then either applied live on purpose or refused,
// never accepted and ignored. It also fails when liveSections names a
// section configs.File does not have.
func TestApplyConfigSections(t *testing.T) {
	ft := reflect.TypeFor[configs.File]()
	names := map[string]bool{}
	for i := range ft.NumField() {
		names[sectionName(ft.Field(i))] = true
	}
	for name := range liveSections {
		if !names[name] {
			t.Errorf("liveSections names [%s], which configs.File does not have", name)
		}
	}

	base := configs.Defaults()
	var paths [][]int
	leaves(reflect.ValueOf(base), nil, &paths)
	if len(paths) < ft.NumField() {
		t.Fatalf("found %d settings in %d sections: the walk missed some", len(paths), ft.NumField())
	}
	seen := map[string]bool{}
	for _, p := range paths {
		cur, next := configs.Defaults(), configs.Defaults()
		v := reflect.ValueOf(&next).Elem()
		name := pathName(ft, p)
		if !change(v.FieldByIndex(p)) {
			t.Errorf("%s: cannot change a %s", name, v.FieldByIndex(p).Kind())
			continue
		}
		section := sectionName(ft.Field(p[0]))
		seen[section] = true
		got := restartSections(&cur, &next)
		live := liveSections[section] != nil || name == "log.level"
		switch {
		case live && len(got) != 0:
			t.Errorf("changing %s (live) is refused as %v", name, got)
		case !live && !slices.Equal(got, []string{"[" + section + "]"}):
			t.Errorf("changing %s: refused as %v, want [%s] (neither live nor refused?)", name, got, section)
		}
	}
	for name := range names {
		if !seen[name] {
			t.Errorf("[%s]: no setting of it was changed", name)
		}
	}
}

// TestApplyConfigLive: applyConfig calls a live section's function when
// that section changed and only then, takes the new configuration as the
// running one, and refuses it, keeping the running one, when the function
// fails.
func TestApplyConfigLive(t *testing.T) {
	saved := liveSections
	t.Cleanup(func() { liveSections = saved })
	calls := 0
	var fail error
	liveSections = map[string]func(*Daemon, *configs.File) error{
		"control": func(_ *Daemon, next *configs.File) error { calls++; return fail },
	}
	cur := configs.Defaults()
	d := &Daemon{running: &running{file: &cur}}
	same := configs.Defaults()
	if err := d.applyConfig(&running{file: &same}); err != nil || calls != 0 {
		t.Fatalf("unchanged configuration: %v, %d calls", err, calls)
	}
	ft := reflect.TypeFor[configs.File]()
	var paths [][]int
	leaves(reflect.ValueOf(cur), nil, &paths)
	changed := configs.Defaults()
	for _, p := range paths {
		if sectionName(ft.Field(p[0])) == "control" && change(reflect.ValueOf(&changed).Elem().FieldByIndex(p)) {
			t.Logf("changing %s", pathName(ft, p))
			break
		}
	}
	fail = errors.New("refused")
	r := &running{file: &changed}
	if err := d.applyConfig(r); err != fail || calls != 1 || d.running.file != &same {
		t.Fatalf("failing apply: %v, %d calls, running %p", err, calls, d.running.file)
	}
	fail = nil
	if err := d.applyConfig(r); err != nil || calls != 2 || d.running != r {
		t.Fatalf("changed [control]: %v, %d calls", err, calls)
	}
}

// leaves appends the index path of every setting under v: each field of a
// plain kind, each slice or map as a whole (adding an element changes it),
// each struct with no exported field as a whole.
func leaves(v reflect.Value, at []int, out *[][]int) {
	exported := 0
	if v.Kind() == reflect.Struct {
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				exported++
				leaves(v.Field(i), append(at, i), out)
			}
		}
	}
	if exported == 0 {
		// A plain value, or a struct of unexported fields (netip.Addr):
		// change says whether it can be changed.
		*out = append(*out, slices.Clone(at))
	}
}

// change sets v to a value other than the one it holds, reporting whether
// it knows how.
func change(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(v.Uint() + 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(v.Float() + 1)
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
	case reflect.Array:
		return v.Len() > 0 && change(v.Index(0))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for it := v.MapRange(); it.Next(); {
			m.SetMapIndex(it.Key(), it.Value())
		}
		k := reflect.New(v.Type().Key()).Elem()
		if !change(k) {
			return false
		}
		for m.MapIndex(k).IsValid() {
			change(k)
		}
		m.SetMapIndex(k, reflect.New(v.Type().Elem()).Elem())
		v.Set(m)
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			return true
		}
		c := reflect.New(v.Type().Elem())
		c.Elem().Set(v.Elem())
		if !change(c.Elem()) {
			return false
		}
		v.Set(c)
	default:
		return false
	}
	return true
}

// pathName names the setting at index path p of t by its TOML keys.
func pathName(t reflect.Type, p []int) string {
	var parts []string
	for _, i := range p {
		f := t.Field(i)
		parts = append(parts, sectionName(f))
		t = f.Type
	}
	return strings.Join(parts, ".")
}
