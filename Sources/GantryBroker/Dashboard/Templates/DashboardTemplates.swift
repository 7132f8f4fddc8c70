/// Every template by name. Pages extend `layout` (mustache template inheritance) and fill its `content` block.
enum DashboardTemplates {
    static let all: [(String, String)] = [
        ("layout", layout), ("login", login), ("overview", overview), ("jobs", jobs), ("job", job), ("queues", queues),
        ("workers", workers), ("cron", cron), ("types", types), ("type", type), ("audit", audit), ("bulk", bulk),
        ("operations", operations), ("operation", operation), ("events", events), ("event", event), ("packages", packages), ("package", package),
    ]

    static let layout = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{title}} · Gantry</title>
    <link rel="stylesheet" href="/assets/style.css">
    <script src="/assets/page.js" defer></script>
    </head>
    <body>
    <header class="top">
      <a class="brand" href="/">Gantry</a>
      <nav>{{#nav}}<a href="{{path}}"{{#active}} class="active" aria-current="page"{{/active}}>{{title}}</a>{{/nav}}</nav>
      <div class="who">
        <label class="small"><input type="checkbox" id="refresh-pause"> pause updates</label>
        {{#user}}<span id="who">{{name}} · {{role}}</span>
        {{#signedIn}}<form class="inline" method="post" action="/logout"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Sign out</button></form>{{/signedIn}}{{/user}}
      </div>
    </header>
    {{#user.open}}<div class="banner" id="open-banner">This broker has no tokens: anyone who can reach this port may see and do everything here. Configure tokens to require sign-in.</div>{{/user.open}}
    <main>
    {{#notice}}<div class="notice" id="notice">{{notice}}</div>{{/notice}}
    {{#problem}}<div class="problem" id="problem">{{problem}}</div>{{/problem}}
    {{$content}}{{/content}}
    </main>
    </body>
    </html>
    """#

    static let login = #"""
    <!doctype html>
    <html lang="en">
    <head><meta charset="utf-8"><title>Sign in · Gantry</title><link rel="stylesheet" href="/assets/style.css"></head>
    <body>
    <main class="login">
    <h1>Sign in to Gantry</h1>
    {{#problem}}<div class="problem" id="problem">{{problem}}</div>{{/problem}}
    <form class="stack" method="post" action="/login">
      <input type="hidden" name="next" value="{{next}}">
      <label>Admin or viewer token <input type="password" name="token" id="token" autocomplete="current-password" autofocus></label>
      <button class="primary" type="submit" id="sign-in">Sign in</button>
      <p class="muted small">Tokens come from <code>gantry token new --role admin</code> (or <code>--role viewer</code>) and the broker's config.</p>
    </form>
    </main>
    </body>
    </html>
    """#
}
