package textlayer

import (
	"fmt"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// maxFormDepth bounds how deep stripPage follows form XObjects drawn by forms: an earlier
// layer is a form on the page (readocr's, OCRmyPDF's) or the page's content (Tesseract's PDF).
const maxFormDepth = 4

// stripPage removes the invisible text of page i's content (one new stream when there was
// any) and of the form XObjects in resources (each changed form a new object, put in the
// resources' copied XObject dictionary: a form shared with pages not redone keeps its text).
// It reports whether anything was removed.
func (u *update) stripPage(i int, contents types.Array, resources types.Dict) (types.Array, bool, error) {
	changed, err := u.stripForms(resources, 0)
	if err != nil {
		return nil, false, err
	}
	if len(contents) == 0 {
		return contents, changed, nil
	}
	var all []byte
	for _, c := range contents {
		sd, _, err := u.ctx.DereferenceStreamDict(c)
		if err != nil {
			return nil, false, fmt.Errorf("page %d's content: %w", i+1, err)
		}
		if sd == nil {
			continue
		}
		if err := sd.Decode(); err != nil {
			return nil, false, fmt.Errorf("page %d's content: %w", i+1, err)
		}
		all = append(append(all, sd.Content...), '\n')
	}
	out, removed := stripInvisible(all)
	if removed == 0 {
		return contents, changed, nil
	}
	return types.Array{u.add(flateStream(types.Dict{}, out))}, true, nil
}

// stripForms strips the form XObjects of resources, whose XObject dictionary pageResources
// copied (at depth 0) or stripForms did.
func (u *update) stripForms(resources types.Dict, depth int) (bool, error) {
	xo, ok := resources["XObject"].(types.Dict)
	if !ok || depth > maxFormDepth {
		return false, nil
	}
	changed := false
	for name, o := range xo {
		ref, isRef := o.(types.IndirectRef)
		if isRef {
			if c, done := u.stripped[ref.ObjectNumber.Value()]; done {
				if c != nil {
					xo[name], changed = *c, true
				}
				continue
			}
		}
		nf, err := u.stripForm(o, depth)
		if err != nil {
			return false, fmt.Errorf("form %s: %w", name, err)
		}
		if isRef {
			if u.stripped == nil {
				u.stripped = map[int]*types.IndirectRef{}
			}
			u.stripped[ref.ObjectNumber.Value()] = nil
		}
		if nf == nil {
			continue
		}
		r := u.add(*nf)
		if isRef {
			u.stripped[ref.ObjectNumber.Value()] = &r
		}
		xo[name], changed = r, true
	}
	return changed, nil
}

// stripForm is form o without its invisible text (and its forms'), or nil when it had none or
// is not a form.
func (u *update) stripForm(o types.Object, depth int) (*types.StreamDict, error) {
	sd, _, err := u.ctx.DereferenceStreamDict(o)
	if err != nil || sd == nil {
		return nil, err
	}
	if st, _ := sd.Dict["Subtype"].(types.Name); st != "Form" {
		return nil, nil
	}
	var res types.Dict
	nested := false
	if r, ok := sd.Dict["Resources"]; ok {
		d, err := u.ctx.DereferenceDict(r)
		if err != nil {
			return nil, err
		}
		res = types.Dict{}
		for k, v := range d {
			res[k] = v
		}
		if x, ok := res["XObject"]; ok {
			xd, err := u.ctx.DereferenceDict(x)
			if err != nil {
				return nil, err
			}
			cp := types.Dict{}
			for k, v := range xd {
				cp[k] = v
			}
			res["XObject"] = cp
			if nested, err = u.stripForms(res, depth+1); err != nil {
				return nil, err
			}
		}
	}
	if err := sd.Decode(); err != nil {
		return nil, err
	}
	content, removed := stripInvisible(sd.Content)
	if removed == 0 && !nested {
		return nil, nil
	}
	d := types.Dict{}
	for k, v := range sd.Dict {
		switch k {
		case "Filter", "DecodeParms", "Length":
		default:
			d[k] = v
		}
	}
	if nested {
		d["Resources"] = res
	}
	nf := flateStream(d, content)
	return &nf, nil
}
