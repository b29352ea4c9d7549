package crm_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/crmgate/crmgate/demo/crm"
)

// A test puts the CRM behind whatever it is testing and asks /api/whoami
// what arrived.
func ExampleNew() {
	s := crm.New(crm.Config{Contacts: 10, Seed: 1}, nil, time.Now)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/api/whoami?debug=1", nil)
	req.Header.Set("X-CRM-User", "alice")
	req.Header.Set("X-CRM-Roles", "sales")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var got struct {
		User       string `json:"user"`
		Roles      string `json:"roles"`
		RequestURI string `json:"request_uri"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&got)
	fmt.Println(resp.StatusCode, got.User, got.Roles, got.RequestURI)
	// Output: 200 alice sales /api/whoami?debug=1
}
