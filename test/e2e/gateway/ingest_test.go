package gateway_test

import (
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("alert ingestion", func() {
	It("turns an alert into one RemediationRequest and one audit record", func(ctx SpecContext) {
		code, res := send(ctx, firing("HighCPU"))
		Expect(code).To(Equal(http.StatusAccepted))
		Expect(res.Created).To(HaveLen(1))
		fp := strings.TrimPrefix(res.Created[0], "rr-")

		rrs, err := requestsFor(ctx, fp)
		Expect(err).NotTo(HaveOccurred())
		Expect(rrs).To(HaveLen(1))
		Expect(rrs[0].Object["spec"]).To(HaveKeyWithValue("alertName", "HighCPU"))
		Expect(auditEvents(ctx, fp)).To(Equal(1))
	})

	It("does not turn a duplicate alert into another request or record", func(ctx SpecContext) {
		a := firing("DiskFull")
		_, first := send(ctx, a)
		Expect(first.Created).To(HaveLen(1))
		fp := strings.TrimPrefix(first.Created[0], "rr-")

		code, again := send(ctx, a)
		Expect(code).To(Equal(http.StatusAccepted))
		Expect(again.Created).To(BeEmpty())
		Expect(again.Duplicates).To(ConsistOf(fp))

		rrs, err := requestsFor(ctx, fp)
		Expect(err).NotTo(HaveOccurred())
		Expect(rrs).To(HaveLen(1))
		Expect(auditEvents(ctx, fp)).To(Equal(1))
	})

	It("ignores resolved alerts", func(ctx SpecContext) {
		a := firing("Recovered")
		a.Status = "resolved"
		code, res := send(ctx, a)
		Expect(code).To(Equal(http.StatusAccepted))
		Expect(res.Created).To(BeEmpty())
	})

	It("rejects a payload that is not a webhook", func(ctx SpecContext) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gatewayURL+"/api/v1/signals/prometheus", strings.NewReader("{not json"))
		resp, err := client.Do(req)
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
	})
})
