extension DashboardTemplates {
    static let jobs = #"""
    {{<layout}}{{$content}}
    <h1>Jobs</h1>
    <form class="filters" method="get" action="/jobs" id="job-filters">
      <label>queue <input name="queue" value="{{filter.queue}}" size="12"></label>
      <label>state <select name="state"><option value="">any</option>{{#states}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/states}}</select></label>
      <label>type <input name="type" value="{{filter.type}}" size="14"></label>
      <label>tag <input name="tag" value="{{filter.tag}}" size="10"></label>
      <label>args contain (JSON) <input name="args" value="{{filter.args}}" size="22" placeholder='{"user_id": 7}'></label>
      <label>enqueued from <input type="datetime-local" name="from" value="{{filter.from}}"></label>
      <label>to <input type="datetime-local" name="to" value="{{filter.to}}"></label>
      <button type="submit" class="primary">Filter</button> <a class="button" href="/jobs">Clear</a>
    </form>
    <form method="post" action="/jobs/bulk" id="bulk-form">
      <input type="hidden" name="csrf" value="{{csrf}}">
      <input type="hidden" name="filter" value="{{filterQuery}}">
      {{#mayAct}}
      <div class="actions">
        <span class="muted small">Selected:</span>
        <button type="submit" name="action" value="retry">Retry</button>
        <button type="submit" name="action" value="cancel">Cancel</button>
        <button type="submit" name="action" value="discard" class="danger" data-confirm="Delete the selected jobs for good?">Discard</button>
        <span class="muted small">· All <span id="matching">{{matching}}</span> jobs matching the filter, in the background:</span>
        <button type="submit" name="action" value="retry-all" data-confirm="Retry all {{matching}} jobs matching this filter?">Retry all matching</button>
        <button type="submit" name="action" value="cancel-all" data-confirm="Cancel all {{matching}} jobs matching this filter?">Cancel all matching</button>
        <button type="submit" name="action" value="discard-all" class="danger" data-confirm="Delete all {{matching}} jobs matching this filter for good?">Discard all matching</button>
      </div>
      {{/mayAct}}
      <div data-live="5">
      <table id="jobs">
        <thead><tr>{{#mayAct}}<th><input type="checkbox" class="select-all" aria-label="select all on this page"></th>{{/mayAct}}<th>id</th><th>type</th><th>queue</th><th>state</th><th>attempt</th><th>args</th><th>enqueued</th><th>run at / finished</th></tr></thead>
        <tbody>
        {{#jobs}}<tr data-job="{{id}}">{{#mayAct}}<td><input type="checkbox" class="select-job" name="ids" value="{{id}}" aria-label="select job {{id}}"></td>{{/mayAct}}<td><a href="/jobs/{{id}}">{{id}}</a></td><td>{{type}}</td><td>{{queue}}</td><td><span class="state state-{{state}}">{{state}}</span></td><td class="num">{{attempt}}/{{maxAttempts}}</td><td><code>{{args}}</code></td><td title="{{enqueuedAt}}">{{enqueuedAgo}}</td><td>{{when}}</td></tr>{{/jobs}}
        {{^jobs}}<tr><td colspan="9" class="muted">No jobs match.</td></tr>{{/jobs}}
        </tbody>
      </table>
      </div>
    </form>
    <div class="pager">{{#firstPage}}<a href="/jobs?{{firstPage}}">Newest</a>{{/firstPage}}{{#nextPage}}<a href="/jobs?{{nextPage}}" id="next-page">Older →</a>{{/nextPage}}</div>
    {{/content}}{{/layout}}
    """#

    static let bulk = #"""
    {{<layout}}{{$content}}
    <h1>Bulk action {{id}}</h1>
    <div data-live="2">
    <dl class="facts" id="bulk">
      <dt>action</dt><dd>{{action}}</dd>
      <dt>filter</dt><dd><code>{{filter}}</code></dd>
      <dt>state</dt><dd><span class="state state-{{state}}" id="bulk-state">{{state}}</span></dd>
      <dt>progress</dt><dd><progress max="{{progressMax}}" value="{{done}}"></progress> <span id="bulk-done">{{done}}</span> done, {{skipped}} skipped, of {{matched}} matched so far</dd>
      {{#error}}<dt>error</dt><dd>{{error}}</dd>{{/error}}
      <dt>by</dt><dd>{{actor}}</dd><dt>started</dt><dd>{{startedAt}}</dd><dt>finished</dt><dd>{{finishedAt}}</dd>
    </dl>
    </div>
    <p><a href="/jobs">Back to jobs</a></p>
    {{/content}}{{/layout}}
    """#
}
