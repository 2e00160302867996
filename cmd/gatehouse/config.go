package main

import (
	"errors"
	"fmt"
	"reflect"

	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/gatehouse/gatehouse/runtime/server"
)

// loadServerConfig reads the gateway configuration: defaults, then the
// file (if any), then GATEHOUSE_* environment variables (for example
// GATEHOUSE_BUNDLE_SOURCE for bundle.source). Unknown keys in the file are
// an error, so a misspelled key never silently falls back to a default.
func loadServerConfig(path string) (server.Config, error) {
	v := newViper()
	def := server.Defaults()
	// Register every key with its default so that environment variables
	// are seen for keys the file does not mention.
	setDefaults(v, "", reflect.ValueOf(def))
	if path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return server.Config{}, fmt.Errorf("read config %s: %w", path, err)
		}
	}
	var cfg server.Config
	err := v.UnmarshalExact(&cfg, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		durationHook, mapstructure.StringToSliceHookFunc(","))))
	if err != nil {
		return server.Config{}, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// durationHook accepts Go durations and whole days ("90d").
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(time.Duration(0)) || from.Kind() != reflect.String {
		return data, nil
	}
	return server.ParseDuration(data.(string))
}

func setDefaults(v *viper.Viper, prefix string, val reflect.Value) {
	t := val.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := f.Tag.Get("mapstructure")
		if key == "" {
			continue
		}
		if prefix != "" {
			key = prefix + "." + key
		}
		fv := val.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) {
			setDefaults(v, key, fv)
			continue
		}
		v.SetDefault(key, fv.Interface())
	}
}

// errNoConfig is returned when serve has neither a file nor a bundle source.
var errNoConfig = errors.New("no configuration: pass --config gatehouse.yaml or set GATEHOUSE_BUNDLE_SOURCE")
