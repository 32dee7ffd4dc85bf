package tessconfig

import (
	"errors"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Options
	}{
		{"", Options{PSM: -1, OEM: -1}},
		{"--psm 6", Options{PSM: 6, OEM: -1}},
		{"--psm=11 --oem=1", Options{PSM: 11, OEM: 1}},
		{"--oem 3 --dpi 300", Options{PSM: -1, OEM: 3, DPI: 300}},
		{"--psm 6 --oem 1 -c tessedit_char_whitelist=0123456789", Options{PSM: 6, OEM: 1,
			Vars: map[string]string{"tessedit_char_whitelist": "0123456789"}}},
		{"-ctessedit_char_blacklist=xyz -c preserve_interword_spaces=1", Options{PSM: -1, OEM: -1,
			Vars: map[string]string{"tessedit_char_blacklist": "xyz", "preserve_interword_spaces": "1"}}},
		{`-c "tessedit_char_whitelist=A B"`, Options{PSM: -1, OEM: -1,
			Vars: map[string]string{"tessedit_char_whitelist": "A B"}}},
		{"  --psm   3  ", Options{PSM: 3, OEM: -1}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"--psm", ErrInvalid},
		{"--psm 14", ErrInvalid},
		{"--psm six", ErrInvalid},
		{"--oem 0", ErrUnsupported},
		{"--oem 2", ErrUnsupported},
		{"--oem 9", ErrInvalid},
		{"--dpi 5", ErrInvalid},
		{"--dpi 99999", ErrInvalid},
		{"-c", ErrInvalid},
		{"-c novalue", ErrInvalid},
		{"-c =1", ErrInvalid},
		{"-c debug_file=/etc/passwd", ErrUnsupported},
		{"-c tessedit_write_images=1", ErrUnsupported},
		{"-c preserve_interword_spaces=maybe", ErrInvalid},
		{"-c thresholding_method=7", ErrInvalid},
		{"--tessdata-dir /tmp", ErrUnsupported},
		{"--user-words /etc/passwd", ErrUnsupported},
		{"-l deu", ErrUnsupported},
		{"hocr", ErrUnsupported},
		{`--psm "6`, ErrInvalid},
		{string(make([]byte, MaxLen+1)), ErrInvalid},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("Parse(%.40q) error = %v, want %v", tt.in, err, tt.want)
		}
	}
}

// FuzzParse checks that no input panics, that errors are always one of the two kinds the
// HTTP layer maps, and that accepted options stay within the documented ranges.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "--psm 6", "--oem 1 --dpi 300", "-c tessedit_char_whitelist=0123456789",
		`-c "tessedit_char_whitelist=a b"`, "--psm=3", "-l eng", `'unterminated`, "-c", "--dpi=70"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Parse(%q): unclassified error %v", s, err)
			}
			return
		}
		if o.PSM < -1 || o.PSM > 13 || (o.OEM != -1 && o.OEM != 1 && o.OEM != 3) || (o.DPI != 0 && (o.DPI < 70 || o.DPI > 2400)) {
			t.Fatalf("Parse(%q) = %+v: out of range", s, o)
		}
		for k := range o.Vars {
			if _, ok := Variables[k]; !ok {
				t.Fatalf("Parse(%q) accepted variable %q", s, k)
			}
		}
	})
}
