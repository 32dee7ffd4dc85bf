package httpapi

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/readocr/readocr/internal/testsupport/langpacks"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// With the image's models (eng, osd) and a pack directory holding deu, fra, jpn, the Latin
// script model and four broken files: GET /languages lists what lang= takes with each model's
// script, the broken ones apart; pages are read in their languages; every bad lang is refused
// with its status, code and a message naming what is installed (each answer checked against
// the contract).
func TestLanguagesWithPacks(t *testing.T) {
	packs := langpacks.Dir(t, "deu", "fra", "jpn", "Latin")
	langpacks.Corrupt(t, packs)
	h := newHarness(t, options{workers: 1, tessdata: langpacks.ImageTessdata(t), langpacks: packs})

	r := h.get("/languages")
	var got struct {
		Languages, Scripts []string
		Default            string
		MaxLanguages       int `json:"max_languages"`
		Models             []struct{ Name, Type, Script, Source string }
		Unusable           []struct{ Name, Problem string }
	}
	if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 {
		t.Fatalf("GET /languages: %d %s", r.status, r.body)
	}
	if !slices.Equal(got.Languages, []string{"Latin", "deu", "eng", "fra", "jpn"}) || !slices.Equal(got.Scripts, []string{"Latin"}) ||
		got.Default != "eng" || got.MaxLanguages != 10 || len(got.Models) != 5 || len(got.Unusable) != 4 {
		t.Errorf("GET /languages: %s", r.body)
	}
	for _, m := range got.Models {
		if m.Name == "jpn" && (m.Script != "Japanese" || m.Source != "pack" || m.Type != "language") {
			t.Errorf("jpn: %+v", m)
		}
	}

	for _, c := range []struct{ page, lang string }{
		{"deu_grundgesetz.png", "deu"}, {"fra_ddhc.png", "fra"}, {"deu_grundgesetz.png", "script/Latin"}, {"jpn_neko.png", "jpn"},
	} {
		var img testimages.Image
		for _, i := range testimages.All(t, "langs/") {
			if i.Name == c.page {
				img = i
			}
		}
		r := h.postMultipart(map[string]string{"lang": c.lang}, c.page, img.Bytes)
		text, _ := r.json(t)["text"].(string)
		acc := testimages.Accuracy(strings.Join(strings.Fields(text), ""), strings.Join(strings.Fields(img.Expected), ""))
		if r.status != 200 || acc < 0.95 {
			t.Errorf("%s with lang=%s: %d, accuracy %.3f: %s", c.page, c.lang, r.status, acc, r.body)
		}
	}

	page := b64(testimages.Get(t, "tjs_simple.pbm").Bytes)
	for _, c := range []struct {
		lang   string
		status int
		code   string
		says   string
	}{
		{"xyz", 422, "unknown_language", "xyz not installed; installed: Latin, deu, eng, fra, jpn (GET /languages)"},
		{"eng+klingon", 422, "unknown_language", "klingon not installed; installed: Latin, deu"},
		{"osd", 422, "unknown_language", "osd is the orientation model"},
		{"garbled", 422, "unknown_language", "garbled is installed but cannot be used: loading it crashed"},
		{"truncated", 422, "unknown_language", "truncated is installed but cannot be used: truncated"},
		{"../eng", 400, "invalid_lang", "not a list of model names"},
		{"eng++deu", 400, "invalid_lang", "not a list of model names"},
		{"deu+deu", 400, "invalid_lang", "deu is named twice"},
		{"a+b+c+d+e+f+g+h+i+j+k", 400, "invalid_lang", "11 languages, at most 10"},
	} {
		r := h.postJSON(map[string]string{"image": page, "lang": c.lang})
		e, _ := r.json(t)["error"].(map[string]any)
		if msg, _ := e["message"].(string); r.status != c.status || r.errorCode(t) != c.code || !strings.Contains(msg, c.says) {
			t.Errorf("lang=%s: %d %s; want %d %s saying %q", c.lang, r.status, r.body, c.status, c.code, c.says)
		}
	}
	// The service still reads after all that: no worker was lost.
	if r := h.postJSON(map[string]string{"image": page, "lang": "deu+eng"}); r.status != 200 {
		t.Errorf("lang=deu+eng afterwards: %d %s", r.status, r.body)
	}
}
