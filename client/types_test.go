package client

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/readocr/readocr/service/api"
)

// The hand-written types are the contract's: every property of each schema is a field of the
// same JSON type, every field a property, and a required property is never omitted.
func TestTypesMatchContract(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIYAML)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	schema := func(name string) *openapi3.Schema { return doc.Components.Schemas[name].Value }
	languages := doc.Paths.Find("/languages").Get.Responses.Status(200).Value.Content["application/json"].Schema.Value
	for name, c := range map[string]struct {
		s   *openapi3.Schema
		v   any
		tag string
	}{
		"Job": {schema("Job"), Job{}, "json"}, "OCRDocument": {schema("OCRDocument"), Document{}, "json"},
		"OCRResult": {schema("OCRResult"), TextResult{}, "json"}, "Page": {schema("Page"), Page{}, "json"},
		"Line": {schema("Line"), Line{}, "json"}, "Word": {schema("Word"), Word{}, "json"},
		"BBox": {schema("BBox"), BBox{}, "json"}, "Index": {schema("Index"), Index{}, "json"},
		"Error": {schema("Error"), errorBody{}, "json"}, "languages": {languages, Languages{}, "json"},
		"JobOptions": {schema("JobOptions"), JobOptions{}, "form"}, "PageError": {schema("PageError"), PageError{}, "json"},
	} {
		t.Run(name, func(t *testing.T) { matchSchema(t, name, c.s, reflect.TypeOf(c.v), c.tag) })
	}
	// OCRRequest is Options and the image (the file part).
	req := *schema("OCRRequest")
	req.Properties = maps(req.Properties, "image")
	req.Required = slices.DeleteFunc(slices.Clone(req.Required), func(s string) bool { return s == "image" })
	matchSchema(t, "OCRRequest", &req, reflect.TypeOf(Options{}), "form")

	var formats []string
	for _, f := range Formats {
		formats = append(formats, string(f))
	}
	if want := enum(schema("Format")); !slices.Equal(formats, want) {
		t.Errorf("formats %v, the contract's %v", formats, want)
	}
	statuses := []string{string(Queued), string(Running), string(Succeeded), string(SucceededWithErrors), string(Failed), string(Canceled)}
	if want := enum(schema("Job").Properties["status"].Value); !slices.Equal(statuses, want) {
		t.Errorf("statuses %v, the contract's %v", statuses, want)
	}
}

func maps(m openapi3.Schemas, drop string) openapi3.Schemas {
	out := openapi3.Schemas{}
	for k, v := range m {
		if k != drop {
			out[k] = v
		}
	}
	return out
}

func enum(s *openapi3.Schema) []string {
	var out []string
	for _, v := range s.Enum {
		out = append(out, v.(string))
	}
	return out
}

// matchSchema checks that the struct typ has exactly s's properties, under tag.
func matchSchema(t *testing.T, where string, s *openapi3.Schema, typ reflect.Type, tag string) {
	t.Helper()
	fields := map[string]reflect.StructField{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get(tag), ",")
		if name == "" || name == "-" {
			t.Errorf("%s.%s has no %s name", typ.Name(), f.Name, tag)
			continue
		}
		fields[name] = f
		if _, ok := s.Properties[name]; !ok {
			t.Errorf("%s: field %s.%s (%q) is not in the contract", where, typ.Name(), f.Name, name)
		}
		if slices.Contains(s.Required, name) && strings.Contains(opts, "omitempty") {
			t.Errorf("%s: %q is required but %s.%s omits it when empty", where, name, typ.Name(), f.Name)
		}
	}
	for name, ref := range s.Properties {
		f, ok := fields[name]
		if !ok {
			t.Errorf("%s: property %q has no field in %s", where, name, typ.Name())
			continue
		}
		matchType(t, where+"."+name, ref.Value, f.Type, tag)
	}
}

var timeType = reflect.TypeOf(time.Time{})

func matchType(t *testing.T, where string, s *openapi3.Schema, typ reflect.Type, tag string) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if len(s.OneOf) > 0 { // pages: a string or a number; the client sends a string
		if typ.Kind() != reflect.String {
			t.Errorf("%s: %v for oneOf", where, typ)
		}
		return
	}
	ok := false
	switch {
	case s.Type.Is("string"):
		ok = typ.Kind() == reflect.String || (typ == timeType && s.Format == "date-time")
	case s.Type.Is("integer"):
		ok = typ.Kind() == reflect.Int
	case s.Type.Is("number"):
		ok = typ.Kind() == reflect.Float64
	case s.Type.Is("boolean"):
		ok = typ.Kind() == reflect.Bool
	case s.Type.Is("array"):
		ok = typ.Kind() == reflect.Slice
		if ok {
			matchType(t, where+"[]", s.Items.Value, typ.Elem(), tag)
		}
	case s.Type.Is("object"):
		switch typ.Kind() {
		case reflect.Map:
			ok = s.AdditionalProperties.Schema != nil
		case reflect.Struct:
			ok = true
			matchSchema(t, where, s, typ, tag)
		}
	}
	if !ok {
		t.Errorf("%s: Go type %v for %v", where, typ, s.Type)
	}
}
