package ocr

// Box is a pixel rectangle, top-left origin, X1/Y1 exclusive.
type Box struct{ X0, Y0, X1, Y1 int }

// Word is one recognised word.
type Word struct {
	Text                          string
	Confidence                    float64
	Box                           Box
	Block, Paragraph, Line, Index int
}

// Line is one text line, made from its words.
type Line struct {
	Text                   string
	Confidence             float64
	Box                    Box
	Block, Paragraph, Line int
}

// layout turns a worker's word boxes (in reading order) into words and lines.
func layout(boxes []box) ([]Word, []Line, float64) {
	words := make([]Word, 0, len(boxes))
	var lines []Line
	var perLine []int // words in each line, to average confidences
	var sum float64
	for _, b := range boxes {
		w := Word{
			Text: b.Text, Confidence: b.Confidence, Box: Box{b.X0, b.Y0, b.X1, b.Y1},
			Block: b.Block, Paragraph: b.Paragraph, Line: b.Line, Index: b.Word,
		}
		words = append(words, w)
		sum += w.Confidence
		n := len(lines)
		if n == 0 || lines[n-1].Block != w.Block || lines[n-1].Paragraph != w.Paragraph || lines[n-1].Line != w.Line {
			lines = append(lines, Line{Text: w.Text, Confidence: w.Confidence, Box: w.Box, Block: w.Block, Paragraph: w.Paragraph, Line: w.Line})
			perLine = append(perLine, 1)
			continue
		}
		l := &lines[n-1]
		l.Text += " " + w.Text
		l.Confidence += w.Confidence
		l.Box = Box{min(l.Box.X0, w.Box.X0), min(l.Box.Y0, w.Box.Y0), max(l.Box.X1, w.Box.X1), max(l.Box.Y1, w.Box.Y1)}
		perLine[n-1]++
	}
	for i := range lines {
		lines[i].Confidence /= float64(perLine[i])
	}
	if len(words) == 0 {
		return words, lines, 0
	}
	return words, lines, sum / float64(len(words))
}
