extension DashboardTemplates {
    static let job = #"""
    {{<layout}}{{$content}}
    <h1>Job {{id}} <span class="state state-{{state}}" id="job-state">{{state}}</span></h1>
    {{#mayAct}}
    <div class="actions">
      {{#canRetry}}<form class="inline" method="post" action="/jobs/{{id}}/retry"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="retry">Retry</button></form>{{/canRetry}}
      {{#canCancel}}<form class="inline" method="post" action="/jobs/{{id}}/cancel"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="cancel">Cancel</button></form>{{/canCancel}}
      {{#canDiscard}}<form class="inline" method="post" action="/jobs/{{id}}/discard"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger" id="discard" data-confirm="Delete job {{id}} for good?">Discard</button></form>{{/canDiscard}}
      {{#seesArgs}}<a class="button" id="run-again" href="/types/{{typePath}}?job={{id}}">Run again with these args</a>{{/seesArgs}}
    </div>
    {{/mayAct}}
    <dl class="facts">
      <dt>type</dt><dd><a href="/types/{{typePath}}">{{type}}</a></dd>
      <dt>queue</dt><dd><a href="/jobs?queue={{queue}}">{{queue}}</a></dd>
      <dt>priority</dt><dd>{{priority}}</dd>
      <dt>attempt</dt><dd>{{attempt}} of {{maxAttempts}}</dd>
      <dt>enqueued</dt><dd>{{enqueuedAt}}</dd>
      <dt>run at</dt><dd>{{runAt}}</dd>
      {{#reservedAt}}<dt>started</dt><dd>{{reservedAt}}</dd>{{/reservedAt}}
      {{#leaseExpiresAt}}<dt>lease until</dt><dd>{{leaseExpiresAt}}</dd>{{/leaseExpiresAt}}
      {{#finishedAt}}<dt>finished</dt><dd>{{finishedAt}}{{#took}} (took {{took}}){{/took}}</dd>{{/finishedAt}}
      {{#uniqueKey}}<dt>unique key</dt><dd><code>{{uniqueKey}}</code></dd>{{/uniqueKey}}
      {{#tags}}<dt>tags</dt><dd>{{tags}}</dd>{{/tags}}
      {{#cancelRequestedAt}}<dt>cancel asked</dt><dd>{{cancelRequestedAt}}</dd>{{/cancelRequestedAt}}
    </dl>
    {{#seesArgs}}
    <h2>Args</h2><pre id="job-args">{{args}}</pre>
    {{#result}}<h2>Result</h2><pre id="job-result">{{result}}</pre>{{/result}}
    <h2>Meta</h2><pre>{{meta}}</pre>
    {{/seesArgs}}
    {{^seesArgs}}<p class="muted" id="args-hidden">Args, result and meta are hidden from viewers on this broker.</p>{{/seesArgs}}
    <h2>Attempts</h2>
    <table id="attempts"><thead><tr><th>#</th><th>outcome</th><th>worker</th><th>started</th><th>duration</th><th>error</th></tr></thead><tbody>
    {{#attempts}}<tr><td>{{attempt}}</td><td><span class="state state-{{outcomeClass}}">{{outcome}}</span></td><td>{{worker}}</td><td>{{started}}</td><td>{{duration}}</td><td>{{#message}}<strong>{{kind}}</strong> {{message}}{{/message}}{{#backtrace}}<pre>{{backtrace}}</pre>{{/backtrace}}</td></tr>{{/attempts}}
    {{^attempts}}<tr><td colspan="6" class="muted">Not run yet.</td></tr>{{/attempts}}
    </tbody></table>
    {{/content}}{{/layout}}
    """#
}
