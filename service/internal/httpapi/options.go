package httpapi

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/readocr/readocr/service/internal/failure"
)

// A multipart form carries the options under their JSON names: the fields of pipeline.Options
// and jobs.SubmitOptions, found here by their tags so that a new option needs no code here.

// setOption sets the option a form field names from its text.
func (in *request) setOption(name, value string) error {
	f, _ := optionField(in, name)
	switch f.Kind() {
	case reflect.String:
		f.SetString(value)
	case reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return failure.New(failure.BadRequest, "%s must be true or false", name)
		}
		f.SetBool(b)
	default:
		return failure.New(failure.Internal, "option %s has no form decoding", name)
	}
	return nil
}

// optionField is the field of in's options whose JSON name is name.
func optionField(in *request, name string) (reflect.Value, bool) {
	for _, opts := range []reflect.Value{reflect.ValueOf(&in.Input.Options).Elem(), reflect.ValueOf(&in.SubmitOptions).Elem()} {
		for i := range opts.NumField() {
			tag, _, _ := strings.Cut(opts.Type().Field(i).Tag.Get("json"), ",")
			if tag == name {
				return opts.Field(i), true
			}
		}
	}
	return reflect.Value{}, false
}
