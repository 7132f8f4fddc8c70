# frozen_string_literal: true

require "time"

module Gantry
  # A client of one broker: one pipelined connection (TCP, or TLS for gantrys://) shared by every thread that
  # uses the client. It connects on the first call (and sends `hello`, with the token if any, before anything
  # else), and after the connection drops it reconnects on the next call. A request the broker refused with
  # -32004 storage_unavailable and `data.applied: false` (nothing was done) is sent again by itself, with a
  # bounded backoff.
  #
  #   gantry = Gantry::Client.new(url: "gantry://127.0.0.1:7440", name: "billing-app")
  #   id = gantry.enqueue("email.send", { "to" => "ana@example.com" }, queue: "mail", delay_ms: 30_000)
  #   gantry.job(id)["state"] # => "scheduled"
  #
  #   secure = Gantry::Client.new(url: "gantrys://jobs.internal:7440", token: ENV["BILLING_TOKEN"],
  #                               ca_file: "/etc/gantry/ca.pem")
  class Client
    DEFAULT_URL = "127.0.0.1:7440"
    DEFAULT_PORT = 7440
    # Seconds to wait before each automatic resend of a request refused with -32004 and applied: false.
    RESEND_DELAYS = [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0].freeze
    # Seconds a call waits for its answer (connecting included) unless told otherwise: a broker that accepts
    # connections and then stalls must not hold the caller for ever.
    DEFAULT_TIMEOUT = 30

    attr_reader :host, :port, :name, :session_id, :timeout
    # The enqueue hooks (and on_fatal_error) of this client; Gantry.hooks' run first. See Gantry::Hooks.
    attr_reader :hooks

    # A broker address read from a URL. `token` is the URL's (percent-decoded) userinfo, or nil; it is never
    # shown by #to_s or #inspect.
    class Address
      attr_reader :host, :port, :token

      def initialize(host, port, tls, token)
        @host = host
        @port = port
        @tls = tls
        @token = token
      end

      def tls?
        @tls
      end

      # "gantrys://host:port": the address without its token.
      def to_s
        "#{@tls ? "gantrys" : "gantry"}://#{@host.include?(":") ? "[#{@host}]" : @host}:#{@port}"
      end

      def inspect
        "#<#{self.class} #{self}#{" (with a token)" if @token}>"
      end

      def pretty_print(printer)
        printer.text(inspect)
      end
    end

    # Reads "host:port", "host", "[::1]:port", "gantry://[TOKEN@]host:port" (plain TCP) or
    # "gantrys://[TOKEN@]host:port" (TLS) into an Address; the port defaults to 7440. The token is
    # percent-decoded (write "@" as %40, "%" as %25, ":" as %3A); the last "@" ends it.
    def self.parse_url(url)
      text = url.to_s.strip
      scheme = text[%r{\A([a-z][a-z0-9+.-]*)://}i, 1]
      wrong = lambda do |why|
        ArgumentError.new("not a broker address: #{redact(text).inspect} (#{why}; give host:port, " \
                          "gantry://[TOKEN@]host:port or gantrys://[TOKEN@]host:port)")
      end
      if scheme && !%w[gantry gantrys].include?(scheme.downcase)
        raise wrong.call("the scheme is gantry:// or gantrys://, not #{scheme}://")
      end

      rest = scheme ? text[(scheme.size + 3)..] : text
      userinfo, at, hostport = rest.rpartition("@")
      hostport = rest if at.empty?
      raise wrong.call("a token needs the scheme: gantry://TOKEN@host:port") if !at.empty? && !scheme

      hostport = hostport.chomp("/")
      match = hostport.match(/\A\[(?<host>[^\]]+)\](?::(?<port>\d+))?\z/) ||
              hostport.match(/\A(?<host>[^:\[\]\/@]+)(?::(?<port>\d+))?\z/)
      raise wrong.call("host and port not understood") unless match

      port = (match[:port] || DEFAULT_PORT).to_i
      raise wrong.call("the port is 1 to 65535") unless port.between?(1, 65_535)

      Address.new(match[:host], port, scheme&.downcase == "gantrys", decode_token(userinfo, wrong))
    end

    # Splits a broker address (any form parse_url reads) into [host, port].
    def self.address(url)
      address = parse_url(url)
      [address.host, address.port]
    end

    # The URL with any token in it replaced by "***", for messages: a token is never printed.
    def self.redact(url)
      url.to_s.sub(%r{\A((?:[a-z][a-z0-9+.-]*://)?).*@}im, '\1***@')
    end

    def self.decode_token(userinfo, wrong)
      return nil if userinfo.nil? || userinfo.empty?
      raise wrong.call("the token is not valid percent-encoding (write % as %25)") if userinfo.match?(/%(?!\h\h)/)

      token = userinfo.b.gsub(/%\h\h/n) { |escape| escape[1, 2].hex.chr }.force_encoding(Encoding::UTF_8)
      raise wrong.call("the token is not UTF-8 once percent-decoded") unless token.valid_encoding?

      token
    end
    private_class_method :decode_token

    # url:: "host:port", "gantry://[TOKEN@]host:port" or "gantrys://[TOKEN@]host:port" (TLS); default
    #   $GANTRY_URL, else 127.0.0.1:7440.
    # token:: the token sent in `hello`; else the URL's, else $GANTRY_TOKEN. Never printed, nor shown by #inspect.
    # tls:: true: TLS even for a host:port or gantry:// URL (gantrys:// always is).
    # ca_file:: with TLS, a PEM bundle of the CAs that sign the broker's certificate ($GANTRY_CA_FILE; default:
    #   the system's trusted CAs).
    # cert_file, key_file:: with TLS, a client certificate (PEM) and its key, for a broker that wants mutual TLS
    #   ($GANTRY_CERT_FILE, $GANTRY_KEY_FILE; the key may be in cert_file).
    # name:: the client's name in the broker's logs and `workers.list`.
    # worker:: `hello`'s worker object ({id:, queues:, concurrency:, handlers:}); Gantry::Worker sets it.
    # on_notification:: called as (method, params) for each notification from the broker, in the reader
    #   thread: it must return quickly and must not wait for calls on this client.
    # on_connect:: called (with the session id) after each connection's hello, in the thread of the call that
    #   connected.
    # timeout:: seconds a call waits, from its start to its answer, connecting and hello included (nil: no
    #   limit; `reserve` adds its wait_ms). Past it the call raises Gantry::TimeoutError.
    # connect_timeout:: seconds to open the TCP (and TLS) connection, within `timeout`.
    # hooks:: a Gantry::Hooks to use as this client's (one made by GantryAdapter, say); else a new one.
    # tracing:: the trace context provider (see Gantry::Tracing): nil for Gantry::Tracing.default, false for none.
    def initialize(url: nil, token: nil, tls: nil, ca_file: nil, cert_file: nil, key_file: nil, name: "gantry-ruby",
                   worker: nil, on_notification: nil, on_connect: nil, connect_timeout: 5, timeout: DEFAULT_TIMEOUT,
                   resend_delays: RESEND_DELAYS, hooks: nil, tracing: nil)
      address = self.class.parse_url(url || ENV.fetch("GANTRY_URL", DEFAULT_URL))
      @host = address.host
      @port = address.port
      @token = (given(token) || address.token || given(ENV["GANTRY_TOKEN"]))&.to_s
      @tls = tls_settings(address, tls, ca_file, cert_file, key_file)
      @name = name
      @worker = worker
      @on_notification = on_notification
      @on_connect = on_connect
      @connect_timeout = connect_timeout
      @timeout = timeout
      @hooks = hooks || Hooks.new(names: Hooks::CLIENT, parent: Gantry.hooks, owner: "a Gantry::Client")
      @tracing = tracing
      @resend_delays = resend_delays
      @mutex = Mutex.new
      @connection = nil
      @pid = Process.pid
    end

    # Calls any method with raw params (a Hash, or nil) and returns its result. Raises Gantry::RPCError
    # (a subclass per code: Gantry::InvalidParams, Gantry::NotFound, Gantry::LeaseLost, ...) when the broker
    # answers with an error, Gantry::ConnectionError when the broker cannot be reached or the connection drops
    # before the answer (the outcome is then unknown), Gantry::TimeoutError when no answer came within `timeout`
    # seconds of the call (the client's, DEFAULT_TIMEOUT unless given; connecting counts; the outcome is unknown).
    # Not hooked: only #enqueue and #enqueue_batch run the enqueue hooks.
    def call(method, params = nil, timeout: @timeout)
      resends = 0
      loop do
        deadline = timeout && (now + timeout)
        current = connection(deadline, timeout)
        response = begin
          current.request(method, params, timeout: deadline && [deadline - now, 0.001].max)
        rescue TimeoutError
          raise TimeoutError, "no answer to #{method} from the broker at #{url} within #{format_seconds(timeout)} s " \
                              "(timeout:); the outcome of the request is unknown"
        end
        return response["result"] unless response.key?("error")

        error = RPCError.from(response["error"])
        delay = @resend_delays[resends] if nothing_applied?(error)
        raise error unless delay

        sleep(delay)
        resends += 1
      end
    end

    # Connects now (and says hello) rather than on the first call; returns self.
    def connect
      connection(@timeout && (now + @timeout), @timeout)
      self
    end

    # Adds a hook (before_enqueue, around_enqueue, after_enqueue, on_fatal_error): see Gantry::Hooks.
    def on(name, callable = nil, &block)
      @hooks.on(name, callable, &block)
    end

    def connected?
      !@connection.nil? && !@connection.closed?
    end

    # Whether it speaks TLS to the broker (gantrys://, or tls: true).
    def tls?
      !@tls.nil?
    end

    # The broker's address, without the token: "gantrys://host:port".
    def url
      Address.new(@host, @port, tls?, nil).to_s
    end

    # Shows neither the token nor the certificate key.
    def inspect
      "#<#{self.class} #{url} name=#{@name.inspect}#{" (with a token)" if @token}" \
        "#{" ca_file=#{@tls.ca_file}" if @tls&.ca_file}#{" cert_file=#{@tls.cert_file}" if @tls&.cert_file}" \
        "#{connected? ? " connected" : ""}>"
    end

    def pretty_print(printer)
      printer.text(inspect)
    end

    def close
      @mutex.synchronize do
        @connection&.close
        @connection = nil
      end
      nil
    end

    # --- jobs ---

    # Stores a job and returns its id. Times (`run_at`, `expires_at`) may be Time, Numeric (epoch seconds) or
    # RFC 3339 strings; they are sent to the microsecond. Other keywords are sent as they are (the broker refuses
    # unknown ones). The enqueue hooks run around it, and meta gets the current trace context (see
    # Gantry::Tracing) unless it has a traceparent already.
    def enqueue(type, args = [], queue: nil, priority: nil, run_at: nil, delay_ms: nil, max_attempts: nil,
                timeout_ms: nil, expires_at: nil, queue_timeout_ms: nil, unique_key: nil, tags: nil, meta: nil,
                **more)
      raise ArgumentError, "a job needs a type" if type.nil?

      options = { queue: queue, priority: priority, run_at: run_at, delay_ms: delay_ms, max_attempts: max_attempts,
                  timeout_ms: timeout_ms, expires_at: expires_at, queue_timeout_ms: queue_timeout_ms,
                  unique_key: unique_key, tags: tags, meta: meta, **more }.compact
      enqueue_jobs([NewJob.new(type, args, options)], batch: false)&.first
    end

    # Stores all the jobs or none; each a Hash of enqueue's params (`type:`, `args:`, `queue:`, ...). Returns
    # the ids in order. before_enqueue and after_enqueue run for each job, around_enqueue once around the batch
    # (it gets the Array of Gantry::NewJobs).
    def enqueue_batch(jobs)
      jobs = jobs.map do |job|
        job = job.transform_keys(&:to_sym)
        raise ArgumentError, "a job needs a type" if job[:type].nil?

        NewJob.new(job.delete(:type), job.key?(:args) ? job.delete(:args) : [], job.compact)
      end
      enqueue_jobs(jobs, batch: true) || []
    end

    # Leases up to `max` jobs from the queues (in the order given), waiting up to `wait_ms` for one. Returns
    # an Array of Gantry::Job.
    def reserve(queues, max: 1, wait_ms: 0, lease_ms: nil)
      params = compact("queues" => Array(queues), "max" => max, "wait_ms" => wait_ms, "lease_ms" => lease_ms)
      timeout = @timeout && (@timeout + (wait_ms / 1000.0))
      call("reserve", params, timeout: timeout)["jobs"].map { |job| Job.new(job) }
    end

    # The job succeeded; `result` (any JSON) is kept with it. For a step of an operation (a job whose
    # Job#operation is set), `set` (a Hash) is merged into the operation's globals in the ack's own transaction,
    # and `jump_to` says where the operation goes once this step's place is done: a branch's name (its first
    # step), or {branch: "main", step: "charge.card"}. On another job they are refused (Gantry::InvalidParams,
    # field "set" or "jump_to"); an unknown branch or step too ("jump_to", "jump_to.branch", "jump_to.step").
    def ack(id, result = nil, set: nil, jump_to: nil)
      call("ack", compact("id" => id_of(id), "result" => result, "set" => set,
                          "jump_to" => StepResult.jump_target(jump_to)))
    end

    # Several jobs succeeded: acks them (Gantry::Jobs or ids; 1 to 10000, distinct) in one request and one
    # commit on the broker. `results` maps some of them (by Job or id) to their results. A job whose lease this
    # connection no longer holds does not fail the call: it is answered in "lost". Returns
    # {"ok" => false when some are lost, "acked" => [ids], "lost" => [{"id" =>, "state" =>}, ...]} ("state"
    # absent when no such job), with "cancel_requested_ids" for acked jobs an operator asked to cancel while
    # they ran. A broker older than this form raises Gantry::InvalidParams with field "ids".
    def ack_many(ids, results: nil)
      call("ack", compact("ids" => Array(ids).map { |id| id_of(id) },
                          "results" => results&.to_h { |id, result| [id_of(id), result] }))
    end

    # The attempt failed. `error` is an Exception, a message String or a Hash (message:, kind:, backtrace:).
    # retry: false sends the job to the dead set whatever attempts remain.
    def nack(id, error, retry: true, retry_in_ms: nil)
      call("nack", compact("id" => id_of(id), "error" => Client.error_object(error),
                           "retry" => binding.local_variable_get(:retry), "retry_in_ms" => retry_in_ms))
    end

    # Pushes out the leases of jobs this connection holds; returns {"leases" => [...], "lost" => [...]}.
    # (With a Module it is Ruby's Object#extend.)
    def extend(ids, *modules, lease_ms: nil)
      return super(ids, *modules) if ids.is_a?(Module)

      call("extend", compact("ids" => Array(ids).map { |id| id_of(id) }, "lease_ms" => lease_ms))
    end
    alias extend_leases extend

    # The whole job (jobs.get), as a Hash.
    def job(id)
      call("jobs.get", { "id" => id_of(id) })
    end

    # A page of jobs, newest first: {"jobs" => [...], "next_cursor" => ...}.
    def jobs(queue: nil, state: nil, type: nil, tag: nil, limit: nil, cursor: nil)
      call("jobs.list", compact("queue" => queue, "state" => state, "type" => type, "tag" => tag,
                                "limit" => limit, "cursor" => cursor))
    end

    def retry_job(id)
      call("jobs.retry", { "id" => id_of(id) })
    end

    def cancel_job(id)
      call("jobs.cancel", { "id" => id_of(id) })
    end

    def discard_job(id)
      call("jobs.discard", { "id" => id_of(id) })
    end

    def cleanup(older_than_ms:, states: nil, queue: nil, limit: nil)
      call("cleanup", compact("older_than_ms" => older_than_ms, "states" => states, "queue" => queue,
                              "limit" => limit))
    end

    def stats
      call("stats")
    end

    # --- operations ---

    # Starts an operation: the first step of branch "main" is enqueued. `branches` maps each branch's name to its
    # steps, in order; a step is a job type ("charge.card"), a Hash ({type:, queue:, priority:, max_attempts:,
    # timeout_ms:, args:}) or a parallel group ({parallel: [step, ...]}, see Gantry::Operation.parallel), whose
    # steps run at once and are all done before the next place starts. `globals` (a Hash) is what the steps
    # share; `queue` that of every step naming none (the broker's default: "default"). With `key`, starting the
    # same name and key again answers the operation started before. Returns {"id" =>, "state" =>, "created" =>
    # false when `key` found it}.
    def start_operation(name, branches:, globals: {}, queue: nil, key: nil)
      call("operations.start", compact("name" => name.to_s, "branches" => branches, "globals" => globals,
                                       "queue" => queue, "key" => key))
    end

    # (Each method taking an operation's id also takes start_operation's answer.)

    # The whole operation (operations.get), as a Hash: state, globals, branch and index, path, error, its plan
    # ("branches") and every step run ("steps"). Raises Gantry::NotFound for an unknown id.
    def operation(id)
      call("operations.get", { "id" => operation_id(id) })
    end
    alias get_operation operation

    # A page of operations, newest first, without their plans and steps: {"operations" => [...],
    # "next_cursor" => ...}. `globals` finds those whose globals contain it ({"user_id" => 7}).
    def operations(name: nil, state: nil, globals: nil, limit: nil, cursor: nil)
      call("operations.list", compact("name" => name&.to_s, "state" => state&.to_s, "globals" => globals,
                                      "limit" => limit, "cursor" => cursor))
    end
    alias list_operations operations

    # Resumes a failed or cancelled operation at the step that did not complete (steps completed before it do
    # not run again); from: "start" runs it again from main's first step with its first globals (a completed
    # one too). Returns {"id" =>, "state" =>, "job_ids" => [...]}; Gantry::WrongState when it is running.
    def retry_operation(id, from: nil)
      call("operations.retry", compact("id" => operation_id(id), "from" => from&.to_s))
    end

    # Cancels an operation: its waiting step jobs are cancelled, its running ones asked to stop (as cancel_job
    # does). Returns {"id" =>, "state" => "cancelled", "cancelled" => N, "stopping" => M}; Gantry::WrongState
    # when it has ended.
    def cancel_operation(id)
      call("operations.cancel", { "id" => operation_id(id) })
    end

    # --- events and subscriptions ---

    # Publishes an event (`type` like "order.paid": no spaces, not ending in "*"; `payload` any JSON, {} by
    # default): in one commit it is recorded and every active subscription matching its type and payload starts
    # its job or operation. With `key`, publishing the same key again within `dedupe_ms` (24 h by default)
    # starts nothing and answers the first event, so a publish whose answer was lost may be sent again. Returns
    # {"id" =>, "duplicate" =>, "triggered" => [{"subscription" =>, "job_id" or "operation_id" =>}, ...]}; a
    # package whose triggers.events matched is there as {"package" =>, "operation_id" =>} (no "subscription"),
    # and a package target that started nothing (inactive, deleted) carries "skipped" saying why.
    def publish(type, payload = {}, key: nil, dedupe_ms: nil)
      call("events.publish", compact("type" => type.to_s, "payload" => payload, "key" => key,
                                     "dedupe_ms" => dedupe_ms))
    end

    # (Each method taking an event's id also takes publish's or replay_event's answer.)

    # One event (events.get), as a Hash: type, payload, key, replay_of, published_at, and "triggered", each with
    # the "state" of its job or operation now ("deleted" once cleaned up). Raises Gantry::NotFound for an
    # unknown id.
    def event(id)
      call("events.get", { "id" => event_id(id) })
    end
    alias get_event event

    # A page of events, newest first: {"events" => [...], "next_cursor" => ...}. `type` is exact or "prefix.*";
    # `since` (a Time, epoch seconds or an RFC 3339 string) keeps those published at or after it.
    def events(type: nil, since: nil, limit: nil, cursor: nil)
      call("events.list", compact("type" => type&.to_s, "since" => since && Client.timestamp(since),
                                  "limit" => limit, "cursor" => cursor))
    end
    alias list_events events

    # Publishes an event's type and payload again, as a new event whose "replay_of" names it (never
    # deduplicated): every subscription matching now starts again. Returns as publish does.
    def replay_event(id)
      call("events.replay", { "id" => event_id(id) })
    end

    # Creates or replaces the subscription `name` (1 to 128 letters, digits, "_ - . :"). `event` is an event
    # type, "prefix.*" or "*"; `filter` a Hash the payload must contain (JSON containment). `target` is a job,
    # {type:, queue:, args: (the event's payload by default, "$payload"), priority:, max_attempts:}, a package's
    # execution, {package: name, config: (overrides of its config)}, or an operation, {operation: {name:,
    # branches:, queue:, globals:}}; an execution or operation starts with "event" => {"id", "type", "payload"}
    # in its globals. Jobs it starts carry meta {"event_id", "event_type", "subscription"}. Returns
    # {"subscription" => {...}, "created" => false when it replaced one}. Mistakes raise Gantry::InvalidParams
    # naming the field ("filter", "event", "target.package", "target.config.region",
    # "target.operation.branches.main", ...).
    def upsert_subscription(name, event:, target:, filter: nil)
      call("subscriptions.upsert", compact("name" => name.to_s, "event" => event.to_s, "filter" => filter,
                                           "target" => target))
    end

    # Every subscription, by name: [{"name", "event", "filter", "target", "paused", "source", ...}, ...].
    def subscriptions
      call("subscriptions.list")["subscriptions"]
    end

    # Returns {"deleted" => true}; Gantry::NotFound when there is none.
    def delete_subscription(name)
      call("subscriptions.delete", { "name" => name.to_s })
    end

    # Events start nothing through it until resume_subscription. Returns the subscription.
    def pause_subscription(name)
      call("subscriptions.pause", { "name" => name.to_s })
    end

    def resume_subscription(name)
      call("subscriptions.resume", { "name" => name.to_s })
    end

    # --- packages and executions ---

    # Creates or replaces the package `name` (a job type: its executions are operations of this name). `steps`
    # are one branch's steps, as start_operation takes them (job types, Hashes, parallel groups); `config` (a
    # Hash) is what they read, in job.package["config"]; `queue` that of every step naming none. `triggers`:
    # {cron: "0 3 * * *", timezone: "Europe/Paris", events: ["report.requested", "order.*"], manual: true (may
    # run_package start it)}. An inactive package (active: false) starts nothing. Executions already started
    # keep the steps and config they started with. Returns {"package" => {...}, "created" => false when it
    # replaced one}. Mistakes raise Gantry::InvalidParams naming the field ("steps[0].type", "config",
    # "triggers.cron", ...).
    def upsert_package(name, steps:, description: nil, config: nil, triggers: nil, active: nil, queue: nil)
      call("packages.upsert", compact("name" => name.to_s, "description" => description, "steps" => steps,
                                      "config" => config, "triggers" => triggers, "active" => active,
                                      "queue" => queue))
    end

    # Every package, by name: [{"name", "steps", "config", "triggers", "active", "queue", "source", ...}, ...].
    def packages
      call("packages.list")["packages"]
    end

    # One package, as a Hash; Gantry::NotFound when there is none.
    def package(name)
      call("packages.get", { "name" => name.to_s })
    end
    alias get_package package

    # Returns {"deleted" => true}; its executions stay until cleanup. Gantry::NotFound when there is none,
    # Gantry::WrongState while a subscription targets it (its data names them).
    def delete_package(name)
      call("packages.delete", { "name" => name.to_s })
    end

    # Starts an execution by hand; `config` overrides keys of the package's config for this run only. A key the
    # package's config lacks is refused (Gantry::InvalidParams, field "config.<key>") rather than run with the
    # default. Returns {"id" => (the execution's operation id), "package" =>, "state" =>}; Gantry::WrongState
    # when the package is inactive or its triggers.manual is false.
    def run_package(name, config: nil)
      call("packages.run", compact("name" => name.to_s, "config" => config))
    end

    # A page of the package's executions, newest first: {"executions" => [...], "next_cursor" => ...}. Each has
    # its state, trigger ("manual", "cron" or "event"), config, globals and "steps": each step's last run
    # ({"index", "type", "state", "job_id", "attempts", "result", "error", ...}).
    def package_executions(name, limit: nil, cursor: nil)
      call("packages.executions", compact("name" => name.to_s, "limit" => limit, "cursor" => cursor))
    end

    # Keeps an execution (its id, or run_package's answer) for good under `name`, unique within its package
    # (saving it again renames it): cleanup and retention never remove it. Returns the execution, with "saved"
    # => {"name", "description", "saved_at"}.
    def save_execution(id, name:, description: nil)
      call("executions.save", compact("id" => operation_id(id), "name" => name.to_s, "description" => description))
    end

    # The saved executions, newest saved first (of one package, or all).
    def saved_executions(package: nil)
      call("executions.saved", compact("package" => package&.to_s))["executions"]
    end

    # --- queues and workers ---

    def queues
      call("queues.list")["queues"]
    end

    def pause_queue(queue)
      call("queues.pause", { "queue" => queue })
    end

    def resume_queue(queue)
      call("queues.resume", { "queue" => queue })
    end

    def workers
      call("workers.list")["workers"]
    end

    # Tells workers (by worker id or session id, or all: true) to finish what they hold and take nothing new.
    # Returns how many were told.
    def quiet_workers(id = nil, all: false)
      call("workers.quiet", compact("id" => id, "all" => (true if all)))["workers"]
    end

    # Tells workers to hand back what they hold and exit. Returns how many were told.
    def stop_workers(id = nil, all: false)
      call("workers.stop", compact("id" => id, "all" => (true if all)))["workers"]
    end

    # nack's `error` object from an Exception, a String or a Hash.
    def self.error_object(error)
      case error
      when Exception
        compact("message" => error.message.to_s.empty? ? error.class.name : error.message,
                "kind" => error.class.name, "backtrace" => error.backtrace&.first(100))
      when Hash
        error.transform_keys(&:to_s)
      else
        { "message" => error.to_s }
      end
    end

    # RFC 3339 UTC with microseconds (a String is sent as it is). Epoch seconds are rounded to the microsecond
    # (a Float such as ActiveJob's scheduled_at is seldom exact: 0.25 is, 0.123456 is not), a Time too.
    def self.timestamp(value)
      time = case value
             when String then return value
             when Integer then Time.at(value)
             when Numeric
               micros = (value * 1_000_000).round
               Time.at(micros / 1_000_000, micros % 1_000_000, :usec)
             else value.to_time.round(6)
             end
      time.utc.strftime("%Y-%m-%dT%H:%M:%S.%6NZ")
    end

    def self.compact(hash)
      hash.reject { |_, value| value.nil? }
    end

    private

    def now
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    # The open connection, or a new one made before `deadline` (nil: none).
    def connection(deadline = nil, timeout = nil)
      opened = nil
      current = @mutex.synchronize do
        if @pid != Process.pid # forked: the parent's socket and reader thread are not ours
          @pid = Process.pid
          @connection = nil
        end
        @connection = nil if @connection&.closed?
        @connection ||= (opened = open_connection(deadline, timeout))
      end
      @on_connect&.call(@session_id) if opened # outside the lock: it may call this client
      current
    end

    def open_connection(deadline, timeout)
      notified = @on_notification && ->(message) { @on_notification.call(message["method"], message["params"]) }
      connect_timeout = deadline ? [[deadline - now, 0.001].max, @connect_timeout].min : @connect_timeout
      connection = Connection.new(@host, @port, connect_timeout: connect_timeout, tls: @tls,
                                                on_notification: notified)
      hello = compact("client" => @name, "protocol" => PROTOCOL, "worker" => @worker, "token" => @token)
      hello_wait = [@connect_timeout * 2, 10].max
      hello_wait = [[deadline - now, 0.001].max, hello_wait].min if deadline
      response = begin
        connection.request("hello", hello, timeout: hello_wait)
      rescue TLSError
        raise
      rescue TimeoutError
        raise TimeoutError, "the broker at #{url} accepted the connection but did not answer hello within " \
                            "#{format_seconds(deadline && timeout ? timeout : hello_wait)} s (timeout:)"
      rescue ConnectionError => e
        detail = "before the broker answered hello"
        detail += "; if it serves TLS there, use #{Address.new(@host, @port, true, nil)}" unless tls?
        raise ConnectionError, "#{e.message.delete_suffix(Connection::OUTCOME_UNKNOWN).rstrip} (#{detail})"
      end
      raise RPCError.from(response["error"]) if response.key?("error") # unauthorized: a bad or missing token

      @session_id = response.dig("result", "session_id")
      connection
    rescue Exception # rubocop:disable Lint/RescueException
      connection&.close
      raise
    end

    def format_seconds(seconds)
      seconds.to_f.round(3).to_s.delete_suffix(".0")
    end

    # Every enqueue path: the before hooks for each job, the around hooks around sending, the trace context
    # added last (inside the around hooks, so that a span one of them opens is the job's parent), then the after
    # hooks for each job. Once the broker has stored the jobs no hook's error makes the call raise (the caller
    # would enqueue them again): it is reported through on_fatal_error only.
    def enqueue_jobs(jobs, batch:)
      jobs.each { |job| @hooks.run_before(:before_enqueue, [job], { client: self, job: job }) }
      ids = nil
      subject = batch ? jobs : jobs.first
      begin
        @hooks.run_around(:around_enqueue, [subject], { client: self, job: subject }) do
          add_trace_context(jobs)
          params = jobs.map { |job| job_params(job.type, job.args, **job.options) }
          ids = batch ? call("enqueue_batch", { "jobs" => params })["ids"] : [call("enqueue", params.first)["id"]]
          batch ? ids : ids.first # what an around hook's step.call returns
        end
      rescue *Hooks::PASS_THROUGH
        raise
      rescue Exception # rubocop:disable Lint/RescueException -- an around hook's error after the jobs were stored
        raise unless ids
      end
      return nil unless ids # an around hook swallowed the broker's error: nothing was stored

      jobs.zip(ids) do |job, id|
        job.id = id
        @hooks.run_all(:after_enqueue, [job, id], { client: self, job: job })
      end
      ids
    end

    def add_trace_context(jobs)
      provider = Tracing.resolve(@tracing)
      return unless provider

      context = begin
        Tracing.context_from(provider)
      rescue *Hooks::PASS_THROUGH
        raise
      rescue Exception => e # rubocop:disable Lint/RescueException -- a broken tracer must not stop enqueues
        @hooks.report(e, { hook: :tracing, client: self })
        nil
      end
      return unless context

      # A caller's traceparent wins, with its tracestate (or none): ours would not belong to it.
      jobs.each do |job|
        meta = job.meta
        meta.update(context) unless meta.key?("traceparent") || meta.key?(:traceparent)
      end
    end

    # A keyword or environment value, nil when absent or empty.
    def given(value)
      value unless value.nil? || value.to_s.empty?
    end

    def tls_settings(address, tls, ca_file, cert_file, key_file)
      if tls == false && address.tls?
        raise ArgumentError, "tls: false, but the URL is gantrys:// (TLS): give one or the other"
      end
      unless tls || address.tls?
        return nil if [ca_file, cert_file, key_file].all?(&:nil?) # $GANTRY_CA_FILE and the others: TLS only

        raise ArgumentError, "ca_file:, cert_file: and key_file: are for TLS, but #{address} is plain TCP: " \
                             "use #{Address.new(@host, @port, true, nil)} (or tls: true)"
      end
      TLS.new(ca_file: given(ca_file) || given(ENV["GANTRY_CA_FILE"]),
              cert_file: given(cert_file) || given(ENV["GANTRY_CERT_FILE"]),
              key_file: given(key_file) || given(ENV["GANTRY_KEY_FILE"]))
    end

    def nothing_applied?(error)
      error.code == -32004 && error.data.is_a?(Hash) && error.data["applied"] == false
    end

    def job_params(type, args, **options)
      raise ArgumentError, "a job needs a type" if type.nil?

      params = { "type" => type.to_s, "args" => args }
      options.each do |key, value|
        next if value.nil? || (key == :meta && value == {}) # a meta only looked at by a hook is not sent

        params[key.to_s] = %i[run_at expires_at].include?(key) ? Client.timestamp(value) : value
      end
      params
    end

    def id_of(id)
      id.is_a?(Job) ? id.id : id.to_s
    end

    # An operation's id, or start_operation's answer.
    def operation_id(id)
      id.is_a?(Hash) ? (id["id"] || id[:id]).to_s : id.to_s
    end

    # An event's id, or publish's (or replay_event's) answer.
    def event_id(id)
      operation_id(id)
    end

    def compact(hash)
      Client.compact(hash)
    end
  end
end
