package holmesgptapi_test

import (
	"encoding/json"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/testbed-dev/testbed/test/platform/holmesgptapi"
)

var _ = Describe("investigation", func() {
	post := func(ctx SpecContext, body string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, env.URL("holmesgpt-api")+"/api/v1/investigate", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		return env.HTTP.Do(req)
	}
	analyse := func(ctx SpecContext, alert string) holmesgptapi.Analysis {
		resp, err := post(ctx, `{"alertName":"`+alert+`"}`)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		var a holmesgptapi.Analysis
		Expect(json.NewDecoder(resp.Body).Decode(&a)).To(Succeed())
		return a
	}

	It("answers a known alert with its analysis", func(ctx SpecContext) {
		a := analyse(ctx, "HighCPU")
		Expect(a.RecommendedWorkflow).To(Equal("restart-pod"))
		Expect(a.Confidence).To(BeNumerically(">", 0.5))
	})

	It("answers the same request the same way", func(ctx SpecContext) {
		Expect(analyse(ctx, "SomethingOdd")).To(Equal(analyse(ctx, "SomethingOdd")))
	})

	It("rejects a request without an alert name", func(ctx SpecContext) {
		resp, err := post(ctx, `{}`)
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
	})
})
