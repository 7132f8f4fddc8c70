/// The dashboard's stylesheet and scripts, compiled into the binary: no CDN, no build step, nothing beside
/// `gantryd` to deploy.
enum DashboardAssets {
    static let files: [String: (contentType: String, body: String)] = [
        "style.css": ("text/css; charset=utf-8", stylesheet),
        "page.js": ("text/javascript; charset=utf-8", pageScript),
        "form.js": ("text/javascript; charset=utf-8", formScript),
    ]
}
