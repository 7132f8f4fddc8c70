extension DashboardTemplates {
    static let overview = #"""
    {{<layout}}{{$content}}
    <h1>Overview</h1>
    <div data-live="5">
    <div class="cards">
      <div class="card"><div class="value" id="total-available">{{totals.available}}</div><div class="label">available</div></div>
      <div class="card"><div class="value">{{totals.scheduled}}</div><div class="label">scheduled</div></div>
      <div class="card"><div class="value">{{totals.reserved}}</div><div class="label">reserved</div></div>
      <div class="card"><div class="value">{{totals.dead}}</div><div class="label">dead</div></div>
      <div class="card"><div class="value">{{totals.processedLastHour}}</div><div class="label">processed, last hour</div></div>
      <div class="card"><div class="value">{{totals.failedLastHour}}</div><div class="label">failed, last hour</div></div>
    </div>
    <h2>Processed and failed per minute, last hour</h2>
    <div class="chart">{{{chart}}}<div class="legend small"><span class="processed">■ processed</span><span class="failed">■ failed</span></div></div>
    <h2>Queues</h2>
    <table id="queues">
      <thead><tr><th>queue</th><th class="num">available</th><th class="num">scheduled</th><th class="num">reserved</th><th class="num">dead</th><th class="num">oldest available</th><th class="num">processed / h</th><th class="num">failed / h</th><th></th></tr></thead>
      <tbody>
      {{#queues}}<tr data-queue="{{name}}"><td><a href="/jobs?queue={{name}}">{{name}}</a></td><td class="num">{{available}}</td><td class="num">{{scheduled}}</td><td class="num">{{reserved}}</td><td class="num">{{dead}}</td><td class="num">{{latency}}</td><td class="num">{{processedLastHour}}</td><td class="num">{{failedLastHour}}</td><td>{{#paused}}<span class="state state-paused">paused</span>{{/paused}}</td></tr>{{/queues}}
      {{^queues}}<tr><td colspan="9" class="muted">No queues yet: enqueue a job and its queue appears here.</td></tr>{{/queues}}
      </tbody>
    </table>
    <h2>Brokers</h2>
    <table id="brokers"><thead><tr><th>broker</th><th>host</th><th>version</th><th>started</th><th>last heartbeat</th></tr></thead><tbody>
    {{#brokers}}<tr><td><code>{{id}}</code>{{#this}} (this one){{/this}}</td><td>{{host}}</td><td>{{version}}</td><td>{{started}}</td><td>{{heartbeat}}</td></tr>{{/brokers}}
    </tbody></table>
    <h2>Workers</h2>
    <p><a href="/workers">{{workerCount}} connected</a></p>
    </div>
    {{/content}}{{/layout}}
    """#
}
