package configs

import (
	"reflect"
	"strings"
)

// tomlKeys lists the dotted key paths of every leaf field of v's type, with
// array tables indexed [0].
func tomlKeys(v any, prefix string) []string {
	return keysOf(reflect.TypeOf(v), prefix)
}

func keysOf(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct:
			keys = append(keys, keysOf(ft, key)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			keys = append(keys, keysOf(ft.Elem(), key+"[0]")...)
		default:
			keys = append(keys, key)
		}
	}
	return keys
}
