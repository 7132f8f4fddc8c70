import Foundation
@testable import GantryBroker
import GantryProtocol
import GantryTesting
import Testing

/// The dashboard's small pieces without a browser: form decoding, where sign-in may send you, what a template sees,
/// and the job filters a query string makes. The pages themselves are walked in Chromium by
/// scripts/dashboard_browser_test.py.
@Suite(.deadline(.seconds(60))) struct DashboardPieceTests {
    @Test func formFieldsDecodeAsBrowsersEncode() {
        let form = FormFields("ids=1&ids=2&args=%7B%22user_id%22%3A+7%7D&note=a+b%2Bc&empty=&bare")
        #expect(form.all("ids") == ["1", "2"])
        #expect(form["args"] == #"{"user_id": 7}"#)
        #expect(form["note"] == "a b+c")
        #expect(form["empty"] == nil, "blank counts as absent")
        #expect(form["bare"] == nil)
        #expect(form.encoded(replacing: "ids", with: "9") == "args=%7B%22user_id%22%3A%207%7D&note=a%20b%2Bc&ids=9")
    }

    @Test func signInSendsYouOnlyToAPathOfThisSite() {
        #expect(DashboardPages.safeNext("/jobs?state=dead") == "/jobs?state=dead")
        for elsewhere in ["//evil.example/x", "https://evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "jobs", nil] {
            #expect(DashboardPages.safeNext(elsewhere) == "/", "\(String(describing: elsewhere))")
        }
    }

    @Test func templatesSeeNoEmptyValues() throws {
        let missing: String? = nil
        let model: [String: Any] = ["a": "", "b": missing as Any, "c": "x", "d": 0, "rows": [["e": "", "f": "y"]], "g": Optional("z") as Any]
        let pruned = try #require(DashboardView.pruned(model) as? [String: Any])
        #expect(pruned.keys.sorted() == ["c", "d", "g", "rows"])
        #expect(pruned["g"] as? String == "z")
        #expect((pruned["rows"] as? [[String: Any]])?.first?.keys.sorted() == ["f"])
        #expect(DashboardView.render("login", ["next": "/", "problem": missing as Any]).contains("nil") == false)
    }

    @Test func jobFiltersComeFromTheQueryAndSayWhatIsWrong() {
        let (filter, problem) = DashboardPages.jobFilter(FormFields("queue=mail&state=dead&args=%7B%22user_id%22%3A7%7D&from=2026-01-31T09%3A30&before=42"))
        #expect(problem == nil)
        #expect(filter.queue == "mail" && filter.state == .dead && filter.beforeID == 42)
        #expect(filter.args == ["user_id": 7])
        #expect(filter.enqueuedAfter == GantryJSON.parseTimestamp("2026-01-31T09:30:00Z"))
        #expect(DashboardPages.jobFilter(FormFields("state=lost")).problem?.contains("not a job state") == true)
        #expect(DashboardPages.jobFilter(FormFields("args=%7Bbad")).problem?.contains("not valid JSON") == true)
        #expect(DashboardPages.jobFilter(FormFields("args=7")).problem?.contains("object or array") == true)
    }

    @Test func onlyLoopbackNamesPassTheOpenDashboardsHostCheck() {
        for host in ["localhost", "localhost:7441", "127.0.0.1:7441", "127.1.2.3", "[::1]:7441"] {
            #expect(DashboardAccess.isLoopbackHost(host), "\(host)")
        }
        for host in ["rebound.example:7441", "127.evil.example", "127.0.0.1.evil.example", "10.0.0.5:7441", "[::2]", ""] {
            #expect(!DashboardAccess.isLoopbackHost(host), "\(host)")
        }
    }

    @Test func csrfTokensCompareWholly() {
        #expect(ConstantTime.equal("abc".utf8, "abc".utf8))
        #expect(!ConstantTime.equal("abc".utf8, "abd".utf8))
        #expect(!ConstantTime.equal("abc".utf8, "ab".utf8))
        #expect(DashboardAccess.randomToken().count == 64)
        #expect(DashboardAccess.randomToken() != DashboardAccess.randomToken())
    }
}
