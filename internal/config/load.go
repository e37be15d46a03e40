package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable the loader reads.
const EnvPrefix = "OPENVISIT_"

// maxFileSize bounds the config file.
const maxFileSize = 1 << 20

// Load builds the configuration: Default, then the YAML file at path (if
// path is not empty), then environ (KEY=VALUE pairs, as os.Environ returns).
// Unknown YAML keys and unknown OPENVISIT_* variables are errors. Load does
// not validate; call Validate.
func Load(path string, environ []string) (Config, error) {
	c := Default()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
		if err != nil {
			return c, fmt.Errorf("config: read %s: %w", path, err)
		}
		if len(data) > maxFileSize {
			return c, fmt.Errorf("config: %s is larger than %d bytes", path, maxFileSize)
		}
		if err := decodeYAML(data, &c); err != nil {
			return c, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	if err := applyEnv(&c, environ); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

func decodeYAML(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// field is one settable leaf of Config, named by its env variable.
type field struct {
	env string
	v   reflect.Value
}

func leaves(v reflect.Value, prefix string, out *[]field) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + strings.ToUpper(tag)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			leaves(fv, name+"_", out)
			continue
		}
		*out = append(*out, field{env: name, v: fv})
	}
}

// EnvNames lists every environment variable the loader understands, for
// documentation and tests.
func EnvNames() []string {
	var c Config
	var fs []field
	leaves(reflect.ValueOf(&c).Elem(), EnvPrefix, &fs)
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.env
	}
	sort.Strings(names)
	return names
}

func applyEnv(c *Config, environ []string) error {
	var fs []field
	leaves(reflect.ValueOf(c).Elem(), EnvPrefix, &fs)
	byName := make(map[string]reflect.Value, len(fs))
	for _, f := range fs {
		byName[f.env] = f.v
	}
	var errs []error
	for _, kv := range environ {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvPrefix) {
			continue
		}
		fv, known := byName[k]
		if !known {
			errs = append(errs, fmt.Errorf("unknown environment variable %s", k))
			continue
		}
		if err := setValue(fv, val); err != nil {
			// The value may be a secret: name the variable only.
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

var durationType = reflect.TypeOf(time.Duration(0))

func setValue(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return errors.New("not a duration (like 90s or 2m)")
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("not a boolean")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return errors.New("not an integer")
		}
		v.SetInt(n)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			return setStructList(v, s)
		}
		if v.Type().Elem().Kind() != reflect.String {
			return errors.New("unsupported list type")
		}
		var items []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// setStructList sets a list of objects (oidc.issuers) from one variable
// holding them as JSON (or YAML), with the same strictness as the file.
func setStructList(v reflect.Value, s string) error {
	p := reflect.New(v.Type())
	dec := yaml.NewDecoder(strings.NewReader(s))
	dec.KnownFields(true)
	if err := dec.Decode(p.Interface()); err != nil && !errors.Is(err, io.EOF) {
		// Not the decoder's message: it may quote the value, a secret.
		return errors.New("not a JSON list of objects with known keys")
	}
	v.Set(p.Elem())
	return nil
}
