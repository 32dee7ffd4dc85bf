package membudget

import (
	"strings"
	"testing"
)

// Each worker's model share comes out of the limit before pages are shared out, and a worker's
// bound is itself, its models and its page.
func TestPlanWithModels(t *testing.T) {
	const mib = 1 << 20
	none, err := NewPlan(768*mib, 1, 27*mib, 0)
	if err != nil {
		t.Fatal(err)
	}
	ten, err := NewPlan(768*mib, 1, 27*mib, 300*mib)
	if err != nil {
		t.Fatal(err)
	}
	if ten.ModelMemory != 300*mib || ten.WorkerMemory() != WorkerBase+300*mib+ten.PageMemory {
		t.Errorf("plan %+v: worker memory %d", ten, ten.WorkerMemory())
	}
	// What the models take is what is left for pages and requests, less.
	if gone := (none.PageMemory + none.RequestBytes) - (ten.PageMemory + ten.RequestBytes); gone != 300*mib {
		t.Errorf("300 MiB of models took %d MiB from pages and requests", gone/mib)
	}
	if total := APIBase + int64(ten.Workers)*ten.WorkerMemory() + ten.RequestBytes; total > 768*mib*9/10 {
		t.Errorf("the plan shares out %d MiB of 768", total/mib)
	}
	// Two workers with ten languages each do not fit 768 MiB: the error says what to change.
	_, err = NewPlan(768*mib, 2, 27*mib, 300*mib)
	if err == nil || !strings.Contains(err.Error(), "--max-languages") {
		t.Errorf("two workers with 300 MiB of models each in 768 MiB: %v", err)
	}
}
