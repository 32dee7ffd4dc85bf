package ocr

import "strings"

// modelNames is what GET /languages says about each model Tesseract's tessdata_fast release
// (4.1.0, Debian's tesseract-ocr-* packages) has: the model's file name, its English name (as
// Debian's package descriptions give it) and the script it reads. Script models (capitalised
// names: Latin, Japanese) read every language written in their script. A model not listed
// here is still used; it is shown without a name.
const modelNames = `afr|Afrikaans|Latin
amh|Amharic|Ethiopic
ara|Arabic|Arabic
asm|Assamese|Bengali
aze|Azerbaijani|Latin
aze_cyrl|Azerbaijani (Cyrillic)|Cyrillic
bel|Belarusian|Cyrillic
ben|Bengali|Bengali
bod|Tibetan Standard|Tibetan
bos|Bosnian|Latin
bre|Breton|Latin
bul|Bulgarian|Cyrillic
cat|Catalan|Latin
ceb|Cebuano|Latin
ces|Czech|Latin
chi_sim|Chinese, Simplified|Han (Simplified)
chi_sim_vert|Chinese, Simplified (vertical)|Han (Simplified)
chi_tra|Chinese, Traditional|Han (Traditional)
chi_tra_vert|Chinese, Traditional (vertical)|Han (Traditional)
chr|Cherokee|Cherokee
cos|Corsican|Latin
cym|Welsh|Latin
dan|Danish|Latin
deu|German|Latin
div|Divehi|Thaana
dzo|Dzongkha|Tibetan
ell|Greek|Greek
eng|English|Latin
enm|English, Middle (1100-1500)|Latin
epo|Esperanto|Latin
est|Estonian|Latin
eus|Basque|Latin
fao|Faroese|Latin
fas|Persian|Arabic
fil|Filipino|Latin
fin|Finnish|Latin
fra|French|Latin
frk|German (Fraktur)|Fraktur
frm|French, Middle (ca. 1400-1600)|Latin
fry|Frisian (Western)|Latin
gla|Gaelic (Scots)|Latin
gle|Irish|Latin
glg|Galician|Latin
grc|Greek, Ancient (to 1453)|Greek
guj|Gujarati|Gujarati
hat|Haitian|Latin
heb|Hebrew|Hebrew
hin|Hindi|Devanagari
hrv|Croatian|Latin
hun|Hungarian|Latin
hye|Armenian|Armenian
iku|Inuktitut|Canadian Aboriginal
ind|Indonesian|Latin
isl|Icelandic|Latin
ita|Italian|Latin
ita_old|Italian, Old|Latin
jav|Javanese|Latin
jpn|Japanese|Japanese
jpn_vert|Japanese (vertical)|Japanese
kan|Kannada|Kannada
kat|Georgian|Georgian
kat_old|Georgian, Old|Georgian
kaz|Kazakh|Cyrillic
khm|Khmer|Khmer
kir|Kyrgyz|Cyrillic
kmr|Kurmanji (Latin)|Latin
kor|Korean|Hangul
kor_vert|Korean (vertical)|Hangul
lao|Lao|Lao
lat|Latin|Latin
lav|Latvian|Latin
lit|Lithuanian|Latin
ltz|Luxembourgish|Latin
mal|Malayalam|Malayalam
mar|Marathi|Devanagari
mkd|Macedonian|Cyrillic
mlt|Maltese|Latin
mon|Mongolian|Cyrillic
mri|Maori|Latin
msa|Malay|Latin
mya|Burmese|Myanmar
nep|Nepali|Devanagari
nld|Dutch|Latin
nor|Norwegian|Latin
oci|Occitan (post 1500)|Latin
ori|Oriya|Oriya
pan|Punjabi|Gurmukhi
pol|Polish|Latin
por|Portuguese|Latin
pus|Pashto|Arabic
que|Quechua|Latin
ron|Romanian|Latin
rus|Russian|Cyrillic
san|Sanskrit|Devanagari
sin|Sinhala|Sinhala
slk|Slovak|Latin
slv|Slovenian|Latin
snd|Sindhi|Arabic
spa|Spanish|Latin
spa_old|Spanish, Old|Latin
sqi|Albanian|Latin
srp|Serbian|Cyrillic
srp_latn|Serbian (Latin)|Latin
sun|Sundanese|Latin
swa|Swahili|Latin
swe|Swedish|Latin
syr|Syriac|Syriac
tam|Tamil|Tamil
tat|Tatar|Cyrillic
tel|Telugu|Telugu
tgk|Tajik|Cyrillic
tha|Thai|Thai
tir|Tigrinya|Ethiopic
ton|Tonga|Latin
tur|Turkish|Latin
uig|Uyghur|Arabic
ukr|Ukrainian|Cyrillic
urd|Urdu|Arabic
uzb|Uzbek|Latin
uzb_cyrl|Uzbek (Cyrillic)|Cyrillic
vie|Vietnamese|Latin
yid|Yiddish|Hebrew
yor|Yoruba|Latin
Arabic|Arabic script|Arabic
Armenian|Armenian script|Armenian
Bengali|Bengali script|Bengali
Canadian_Aboriginal|Canadian Aboriginal script|Canadian Aboriginal
Cherokee|Cherokee script|Cherokee
Cyrillic|Cyrillic script|Cyrillic
Devanagari|Devanagari script|Devanagari
Ethiopic|Ethiopic script|Ethiopic
Fraktur|Fraktur script|Fraktur
Georgian|Georgian script|Georgian
Greek|Greek script|Greek
Gujarati|Gujarati script|Gujarati
Gurmukhi|Gurmukhi script|Gurmukhi
HanS|Han script, Simplified|Han (Simplified)
HanS_vert|Han script, Simplified (vertical)|Han (Simplified)
HanT|Han script, Traditional|Han (Traditional)
HanT_vert|Han script, Traditional (vertical)|Han (Traditional)
Hangul|Hangul script|Hangul
Hangul_vert|Hangul script (vertical)|Hangul
Hebrew|Hebrew script|Hebrew
Japanese|Japanese script|Japanese
Japanese_vert|Japanese script (vertical)|Japanese
Kannada|Kannada script|Kannada
Khmer|Khmer script|Khmer
Lao|Lao script|Lao
Latin|Latin script|Latin
Malayalam|Malayalam script|Malayalam
Myanmar|Myanmar script|Myanmar
Oriya|Oriya (Odia) script|Oriya
Sinhala|Sinhala script|Sinhala
Syriac|Syriac script|Syriac
Tamil|Tamil script|Tamil
Telugu|Telugu script|Telugu
Thaana|Thaana script|Thaana
Thai|Thai script|Thai
Tibetan|Tibetan script|Tibetan
Vietnamese|Vietnamese script|Latin`

// modelInfo is a model's English name and script.
type modelInfo struct{ title, script string }

var modelInfos = func() map[string]modelInfo {
	m := map[string]modelInfo{}
	for _, line := range strings.Split(modelNames, "\n") {
		f := strings.Split(line, "|")
		m[f[0]] = modelInfo{title: f[1], script: f[2]}
	}
	return m
}()

// isScriptModel reports whether name is a script model: upstream names those with a capital
// letter (Latin, HanS) and languages in lower case (ISO 639-2/T codes: deu, chi_sim).
func isScriptModel(name string) bool {
	return name != "" && name[0] >= 'A' && name[0] <= 'Z'
}
