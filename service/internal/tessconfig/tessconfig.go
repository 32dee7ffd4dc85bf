// Package tessconfig parses the Tesseract CLI option string that users of the original service
// pass as "config" (for example "--psm 6 --oem 1 -c tessedit_char_whitelist=0123456789").
//
// Only a documented, safe subset is accepted: options that change recognition of one page.
// Everything that touches files, output renderers or debugging is refused, so a request can
// never make the server read or write a path of its choosing.
package tessconfig

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/kballard/go-shellquote"

	"github.com/readocr/readocr/service/internal/failure"
)

// ErrInvalid means the string is malformed (bad quoting, missing or out-of-range values).
var ErrInvalid = failure.New(failure.InvalidConfig, "invalid config")

// ErrUnsupported means an option or variable outside the supported subset.
var ErrUnsupported = failure.New(failure.UnsupportedConfig, "unsupported config")

// MaxLen bounds the config string; real ones are a few dozen bytes.
const MaxLen = 1024

// Options is a parsed config. Zero values mean "use the service default".
type Options struct {
	PSM  int               // page segmentation mode 0-13; -1 when not given
	OEM  int               // engine mode; -1 when not given
	DPI  int               // source resolution; 0 when not given
	Vars map[string]string // allowlisted -c variables
}

// variable describes an allowlisted -c variable and how to validate its value.
type variable struct {
	check func(string) error
	help  string
}

var boolValues = map[string]bool{"0": true, "1": true, "T": true, "F": true, "true": true, "false": true}

func isBool(v string) error {
	if !boolValues[v] {
		return fmt.Errorf("want 0, 1, true or false")
	}
	return nil
}

func maxChars(n int) func(string) error {
	return func(v string) error {
		if len(v) > n {
			return fmt.Errorf("longer than %d bytes", n)
		}
		return nil
	}
}

func intRange(lo, hi int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want an integer from %d to %d", lo, hi)
		}
		return nil
	}
}

// Variables is the allowlist of -c variables: all can be set per page after Init and are
// restored to their defaults before the next request.
var Variables = map[string]variable{
	"tessedit_char_whitelist":   {maxChars(256), "only recognise these characters"},
	"tessedit_char_blacklist":   {maxChars(256), "never recognise these characters"},
	"preserve_interword_spaces": {isBool, "keep runs of spaces between words"},
	"tessedit_do_invert":        {isBool, "also try inverted (light on dark) text"},
	"thresholding_method":       {intRange(0, 2), "0 Otsu, 1 Leptonica adaptive Sauvola, 2 Sauvola"},
}

// VariableNames returns the allowlisted variable names, sorted.
func VariableNames() []string {
	names := make([]string, 0, len(Variables))
	for n := range Variables {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Parse parses a CLI-style config string.
func Parse(s string) (Options, error) {
	opts := Options{PSM: -1, OEM: -1}
	if len(s) > MaxLen {
		return opts, failure.Detail(ErrInvalid, "longer than %d bytes", MaxLen)
	}
	args, err := shellquote.Split(s)
	if err != nil {
		return opts, failure.Detail(ErrInvalid, "%v", err)
	}
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		next := func() (string, error) {
			if hasValue && strings.HasPrefix(name, "--") {
				return value, nil
			}
			if i+1 >= len(args) {
				return "", failure.Detail(ErrInvalid, "%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		switch {
		case name == "--psm":
			v, err := next()
			if err != nil {
				return opts, err
			}
			if opts.PSM, err = atoiRange("--psm", v, 0, 13); err != nil {
				return opts, err
			}
		case name == "--oem":
			v, err := next()
			if err != nil {
				return opts, err
			}
			if opts.OEM, err = atoiRange("--oem", v, 0, 3); err != nil {
				return opts, err
			}
			// The installed models are LSTM-only (tessdata_fast): the legacy engine is absent.
			if opts.OEM == 0 || opts.OEM == 2 {
				return opts, failure.Detail(ErrUnsupported, "--oem %d needs the legacy engine, which the installed models do not have; use --oem 1 or 3", opts.OEM)
			}
		case name == "--dpi":
			v, err := next()
			if err != nil {
				return opts, err
			}
			if opts.DPI, err = atoiRange("--dpi", v, 70, 2400); err != nil {
				return opts, err
			}
		case args[i] == "-c" || strings.HasPrefix(args[i], "-c"):
			kv := strings.TrimPrefix(args[i], "-c")
			if kv == "" {
				if i+1 >= len(args) {
					return opts, failure.Detail(ErrInvalid, "-c needs name=value")
				}
				i++
				kv = args[i]
			}
			if err := opts.setVar(kv); err != nil {
				return opts, err
			}
		default:
			return opts, failure.Detail(ErrUnsupported, "option %q (supported: --psm, --oem, --dpi, -c with %s)",
				args[i], strings.Join(VariableNames(), ", "))
		}
	}
	return opts, nil
}

func (o *Options) setVar(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return failure.Detail(ErrInvalid, "-c wants name=value, got %q", kv)
	}
	spec, known := Variables[k]
	if !known {
		return failure.Detail(ErrUnsupported, "variable %q (supported: %s)", k, strings.Join(VariableNames(), ", "))
	}
	if err := spec.check(v); err != nil {
		return failure.Detail(ErrInvalid, "-c %s: %v", k, err)
	}
	if o.Vars == nil {
		o.Vars = map[string]string{}
	}
	o.Vars[k] = v
	return nil
}

func atoiRange(name, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, failure.Detail(ErrInvalid, "%s wants an integer from %d to %d, got %q", name, lo, hi, v)
	}
	return n, nil
}
