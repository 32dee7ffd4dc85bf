package ocr

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/readocr/readocr/internal/testsupport/langpacks"
	"github.com/readocr/readocr/internal/testsupport/testimages"
	"github.com/readocr/readocr/service/internal/failure"
)

// langPage returns a page of testdata/ocr/langs.
func langPage(t testing.TB, name string) testimages.Image {
	t.Helper()
	for _, img := range testimages.All(t, "langs/") {
		if img.Name == name {
			return img
		}
	}
	t.Fatalf("no page %s", name)
	return testimages.Image{}
}

// noSpace drops white space: Tesseract puts spaces between Japanese characters, the text has none.
func noSpace(s string) string { return strings.Join(strings.Fields(s), "") }

// The image's models (eng, osd) and packs from another directory are one set: listed with
// their scripts, and each reads its page, which eng alone cannot.
func TestLanguagePacksRead(t *testing.T) {
	packs := langpacks.Dir(t, "deu", "fra", "jpn", "Latin", "Japanese")
	e := newEngine(t, Config{Workers: 1, MaxClients: 8, TessdataDir: langpacks.ImageTessdata(t), LangpackDir: packs})
	if got, want := e.Languages(), []string{"Japanese", "Latin", "deu", "eng", "fra", "jpn"}; !slices.Equal(got, want) {
		t.Fatalf("languages %v, want %v", got, want)
	}
	for _, m := range e.Models().Models() {
		wantSource, wantType := "pack", "language"
		if m.Name == "eng" {
			wantSource = "image"
		}
		if m.Name == "Latin" || m.Name == "Japanese" {
			wantType = "script"
		}
		if m.Source != wantSource || m.Type != wantType || m.Script == "" || m.Title == "" || m.Memory < 4<<20 {
			t.Errorf("model %+v: want source %s, type %s, a script, a title and its memory", m, wantSource, wantType)
		}
		t.Logf("%-8s %-8s %-5s %s, %s: file %.1f MiB, loaded %.1f MiB", m.Name, m.Type, m.Source, m.Title, m.Script,
			float64(m.Size)/(1<<20), float64(m.Memory)/(1<<20))
	}
	deu, fra, jpn := langPage(t, "deu_grundgesetz.png"), langPage(t, "fra_ddhc.png"), langPage(t, "jpn_neko.png")
	for _, c := range []struct {
		page testimages.Image
		lang string
		min  float64 // accuracy, white space ignored; 1: exact
	}{
		{deu, "deu", 1}, {deu, "Latin", 1}, {deu, "script/Latin", 1}, {deu, "deu+eng", 1},
		{fra, "fra", 1}, {fra, "Latin", 1},
		{jpn, "jpn", 0.95}, // 55 of 57 characters (輩 and 猫 are misread)
		{jpn, "Japanese", 1},
	} {
		got := read(t, e, c.page.Bytes, c.lang, "")
		acc := testimages.Accuracy(noSpace(got), noSpace(c.page.Expected))
		t.Logf("%s with %s: accuracy %.3f", c.page.Name, c.lang, acc)
		if acc < c.min {
			t.Errorf("%s with %s: accuracy %.3f < %.2f: %q", c.page.Name, c.lang, acc, c.min, got)
		}
	}
	// Without the packs: eng loses the German letters and cannot read Japanese at all.
	for _, c := range []struct {
		page testimages.Image
		max  float64
	}{{deu, 0.99}, {fra, 0.99}, {jpn, 0.2}} {
		got := read(t, e, c.page.Bytes, "eng", "")
		if acc := testimages.Accuracy(noSpace(got), noSpace(c.page.Expected)); acc > c.max {
			t.Errorf("%s with eng: accuracy %.3f: the page does not need its language", c.page.Name, acc)
		}
	}
}

// Every lang a client may send: refused before any worker sees it, with the right error and a
// message that says what is installed.
func TestParseLang(t *testing.T) {
	packs := langpacks.Dir(t, "deu", "fra", "Latin")
	langpacks.Corrupt(t, packs)
	l, err := OpenLanguages(context.Background(), LanguagesConfig{TessdataDir: langpacks.ImageTessdata(t), LangpackDir: packs})
	if err != nil {
		t.Fatal(err)
	}
	var eleven []string
	for i := range 11 {
		eleven = append(eleven, strings.Repeat(string(rune('a'+i)), 3))
	}
	for _, c := range []struct {
		lang, want string // want: the lang Tesseract is given, or the error's code and words of its message
		err        error
	}{
		{"eng", "eng", nil},
		{"deu+eng", "deu+eng", nil}, // the first leads: kept in order
		{"eng+deu", "eng+deu", nil},
		{"Latin", "Latin", nil},
		{"script/Latin", "Latin", nil}, // as upstream's tessdata and `tesseract --list-langs` name it
		{"eng+script/Latin+fra", "eng+Latin+fra", nil},
		{"xyz", "xyz not installed; installed: Latin, deu, eng, fra (GET /languages)", ErrUnknownLanguage},
		{"deu+klingon+xyz", "klingon, xyz not installed; installed: Latin, deu, eng, fra", ErrUnknownLanguage},
		{"osd", "osd is the orientation model", ErrUnknownLanguage},
		{"garbled", "garbled is installed but cannot be used: loading it crashed", ErrUnknownLanguage},
		{"truncated", "truncated is installed but cannot be used: truncated:", ErrUnknownLanguage},
		{"../eng", "not a list of model names", ErrInvalidLang},
		{"script/../eng", "not a list of model names", ErrInvalidLang},
		{"/usr/share/eng", "not a list of model names", ErrInvalidLang},
		{"eng++deu", "not a list of model names", ErrInvalidLang},
		{"eng+", "not a list of model names", ErrInvalidLang},
		{"eng deu", "not a list of model names", ErrInvalidLang},
		{"", "not a list of model names", ErrInvalidLang},
		{"eng+eng", "eng is named twice", ErrInvalidLang},
		{"Latin+script/Latin", "Latin is named twice", ErrInvalidLang},
		{strings.Join(eleven, "+"), "11 languages, at most 10 at once", ErrInvalidLang},
		{strings.Repeat("a", 33), "not a list of model names", ErrInvalidLang},
		{strings.Repeat("eng+", 200) + "eng", "at most 10 names", ErrInvalidLang},
	} {
		got, err := l.Parse(c.lang, MaxLanguages)
		switch {
		case c.err == nil && (err != nil || got != c.want):
			t.Errorf("Parse(%q) = %q, %v; want %q", c.lang, got, err, c.want)
		case c.err != nil && (!errors.Is(err, c.err) || !strings.Contains(failure.MessageOf(err), c.want)):
			t.Errorf("Parse(%.40q): %v; want %v saying %q", c.lang, err, c.err, c.want)
		}
	}
	if _, err := l.Parse("eng+deu+fra", 2); !errors.Is(err, ErrInvalidLang) {
		t.Errorf("three languages with --max-languages 2: %v", err)
	}
}

// Broken models are found at start, listed with what is wrong, never linked for the workers;
// the engine starts and serves the others. The garbled one aborts Tesseract's process when
// loaded: only the probe's process dies.
func TestCorruptModels(t *testing.T) {
	packs := langpacks.Dir(t, "deu")
	what := langpacks.Corrupt(t, packs)
	e := newEngine(t, Config{Workers: 1, TessdataDir: langpacks.ImageTessdata(t), LangpackDir: packs})
	want := map[string]string{
		"truncated": "truncated: entry ",
		"garbage":   "not a Tesseract model",
		"empty":     "not a Tesseract model",
		"garbled":   "loading it crashed Tesseract's process", // ASSERT_HOST: abort()
	}
	unusable := e.Models().Unusable()
	if len(unusable) != len(want) {
		t.Errorf("unusable models %+v, want %d", unusable, len(want))
	}
	for _, m := range unusable {
		t.Logf("%s (%s): %s", m.Name, what[m.Name], m.Problem)
		if !strings.Contains(m.Problem, want[m.Name]) {
			t.Errorf("%s (%s): problem %q, want %q", m.Name, what[m.Name], m.Problem, want[m.Name])
		}
	}
	if got := e.Languages(); !slices.Equal(got, []string{"deu", "eng"}) {
		t.Errorf("languages %v", got)
	}
	if _, err := e.Lang("garbled"); !errors.Is(err, ErrUnknownLanguage) {
		t.Errorf("lang=garbled: %v", err)
	}
	// The workers' directory has the good models only.
	for name := range want {
		if _, err := os.Lstat(filepath.Join(e.tessdata, name+".traineddata")); err == nil {
			t.Errorf("%s is linked for the workers", name)
		}
	}
	if _, err := os.Stat(filepath.Join(e.tessdata, "deu.traineddata")); err != nil {
		t.Errorf("deu is not linked for the workers: %v", err)
	}
	page := langPage(t, "deu_grundgesetz.png")
	if got := read(t, e, page.Bytes, "deu", ""); testimages.Normalize(got) != testimages.Normalize(page.Expected) {
		t.Errorf("deu beside the broken models: %q", got)
	}
}
