package auth_test

import (
	"fmt"

	"github.com/crmgate/crmgate/auth"
)

// Return URLs from the request are checked before a login remembers them.
func ExampleSafeReturn() {
	for _, raw := range []string{"/contacts/42?tab=notes", "//evil.example", "/%09/evil.example"} {
		fmt.Println(auth.SafeReturn(raw))
	}
	// Output:
	// /contacts/42?tab=notes true
	// / false
	// / false
}
