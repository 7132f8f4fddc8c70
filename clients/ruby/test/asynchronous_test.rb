# frozen_string_literal: true

require_relative "test_helper"
require "active_job"
require "active_job/queue_adapters/gantry_adapter"
require "gantry/active_job_worker"

ActiveJob::Base.logger = Logger.new(nil)

# A stand-in for a model: rows in an in-memory store, and a `find` that builds a new instance from its row each
# time (as ActiveRecord's does), or answers nil when there is none.
class AsyncLedger
  include Gantry::Asynchronous

  QUEUE = "rb-async-#{SecureRandom.hex(6)}".freeze
  CLOSE_QUEUE = "#{QUEUE}-close".freeze
  STORE = {} # rubocop:disable Style/MutableConstant -- the in-memory table
  MUTEX = Mutex.new
  # What the methods did, for the tests to see: one Hash per call.
  CALLS = Thread::Queue.new

  attr_reader :id, :owner

  def self.create(owner)
    id = SecureRandom.random_number(1 << 40)
    MUTEX.synchronize { STORE[id] = { "owner" => owner } }
    new(id, owner)
  end

  def self.find(id)
    row = MUTEX.synchronize { STORE[id]&.dup }
    row && new(id, row["owner"])
  end

  def self.update(id, owner)
    MUTEX.synchronize { STORE[id]["owner"] = owner }
  end

  def self.delete(id)
    MUTEX.synchronize { STORE.delete(id) }
  end

  def initialize(id, owner)
    @id = id
    @owner = owner
  end

  def credit(amount, note = nil, currency: "EUR")
    CALLS << { "method" => "credit", "id" => id, "instance" => object_id, "owner" => owner, "amount" => amount,
               "note" => note, "currency" => currency }
    { "credited" => amount, "currency" => currency }
  end
  perform_asynchronously :credit, queue: QUEUE, priority: 7, max_attempts: 3

  def close(reason)
    CALLS << { "method" => "close", "id" => id, "reason" => reason }
    self # not JSON: the job's result is nil
  end
  perform_asynchronously :close, as: :close_later, type: "ledger.close", queue: CLOSE_QUEUE
end

class AsyncVaultGone < StandardError; end

# Found by a finder that fails: with an error that says the record is gone (one of not_found_errors) for ids
# starting "gone-", with an error that retrying may mend for the others.
class AsyncVault
  include Gantry::Asynchronous

  attr_reader :id

  def initialize(id)
    @id = id
  end

  def open; end

  FINDER = lambda do |id|
    raise AsyncVaultGone, "vault #{id} is gone" if id.start_with?("gone-")

    raise IOError, "the vault store is down"
  end
  perform_asynchronously :open, max_attempts: 5, finder: FINDER
end

class AsynchronousTest < Minitest::Test
  include GantryTest

  # Stands in for a Gantry::Client: records what it is asked to enqueue.
  class EnqueueSpy
    attr_reader :enqueued

    def initialize
      @enqueued = []
    end

    def enqueue(type, args, **options)
      @enqueued << [type, args, options]
      "spy-#{@enqueued.size}"
    end
  end

  def setup
    @gantry = client
    Gantry::Asynchronous.client = @gantry
    AsyncLedger::CALLS.clear
  end

  def teardown
    Gantry::Asynchronous.client = nil
    super
  end

  def worker(queues, **options)
    Gantry::Worker.new(url: url, queues: queues, id: "rb-async-#{SecureRandom.hex(4)}", logger: QUIET_LOGGER,
                       wait_ms: 500, **options)
  end

  def calls(count)
    eventually(10, "the worker made #{count} calls") { AsyncLedger::CALLS.size >= count }
    Array.new(count) { AsyncLedger::CALLS.pop }
  end

  def test_an_async_call_enqueues_a_job_that_the_worker_runs_on_the_record_found_again
    ledger = AsyncLedger.create("ana")
    refund = ledger.credit_async(12.5, "refund", currency: "USD")
    plain = ledger.credit_async(3)
    assert_match(/\A\d+\z/, refund)

    job = @gantry.job(refund)
    assert_equal ["AsyncLedger#credit", AsyncLedger::QUEUE, 7, 3, "available"],
                 job.values_at("type", "queue", "priority", "max_attempts", "state")
    assert_equal({ "id" => ledger.id, "args" => [12.5, "refund"], "kwargs" => { "currency" => "USD" } }, job["args"])
    assert_equal({ "id" => ledger.id, "args" => [3] }, @gantry.job(plain)["args"])
    assert_empty AsyncLedger::CALLS, "nothing ran in the caller"

    AsyncLedger.update(ledger.id, "ana maria") # the worker sees the stored row, not the caller's object
    work = worker([AsyncLedger::QUEUE], handlers: Gantry::Asynchronous.handlers(AsyncLedger), max_jobs: 2)
    assert_includes work.handlers.keys, "AsyncLedger#credit"
    assert start_worker(work).join(10), "the worker did not finish its two jobs"

    done = calls(2).sort_by { |call| call["amount"] }
    assert_equal [[ledger.id, "ana maria", 3, nil, "EUR"], [ledger.id, "ana maria", 12.5, "refund", "USD"]],
                 done.map { |call| call.values_at("id", "owner", "amount", "note", "currency") }
    done.each { |call| refute_equal ledger.object_id, call["instance"], "the worker found the record again" }
    assert_equal ["completed", { "credited" => 12.5, "currency" => "USD" }],
                 @gantry.job(refund).values_at("state", "result")
  end

  def test_as_type_register_and_options_of_one_call
    ledger = AsyncLedger.create("bo")
    refute_respond_to ledger, :close_async
    id = ledger.close_later("moved")
    assert_equal ["ledger.close", AsyncLedger::CLOSE_QUEUE], @gantry.job(id).values_at("type", "queue")

    work = Gantry::Asynchronous.register(worker([AsyncLedger::CLOSE_QUEUE], max_jobs: 1))
    assert_includes work.handlers.keys, "ledger.close"
    assert_includes work.handlers.keys, "AsyncLedger#credit" # register with no class: every declared method
    assert start_worker(work).join(10), "the worker did not finish"
    assert_equal [{ "method" => "close", "id" => ledger.id, "reason" => "moved" }], calls(1)
    assert_equal ["completed", nil], @gantry.job(id).values_at("state", "result")

    queue = unique_queue("rb-async")
    later = ledger.gantry_enqueue(:credit, args: [5], kwargs: { currency: "GBP" }, queue: queue, delay_ms: 60_000,
                                           priority: 9, unique_key: "credit-#{ledger.id}")
    job = @gantry.job(later)
    assert_equal ["AsyncLedger#credit", queue, "scheduled", 9, 3],
                 job.values_at("type", "queue", "state", "priority", "max_attempts")
    assert_equal({ "id" => ledger.id, "args" => [5], "kwargs" => { "currency" => "GBP" } }, job["args"])
    assert_raises(ArgumentError) { ledger.gantry_enqueue(:open) }
    @gantry.cancel_job(later)
  end

  def test_arguments_that_are_not_json_are_refused_at_enqueue_naming_them
    spy = EnqueueSpy.new
    Gantry::Asynchronous.client = spy
    ledger = AsyncLedger.create("cy")
    refused = {
      -> { ledger.credit_async(Time.now) } => /AsyncLedger#credit_async: argument 1 \(amount\) is a Time\./,
      -> { ledger.credit_async(1, { "at" => [Object.new] }) } => /argument 2 \(note\) at \["at"\]\[0\] is an Object/,
      -> { ledger.credit_async(1, { force: true }) } => /argument 2 \(note\) has the key :force \(a Symbol\)/,
      -> { ledger.credit_async(1, currency: :usd) } => /keyword currency: is the Symbol :usd, which would come back/,
      -> { ledger.credit_async(Float::NAN) } => /argument 1 \(amount\) is NaN/,
      -> { ledger.credit_async(1, "\xff".b) } => /argument 2 \(note\) is a String that is not valid UTF-8/,
      -> { ledger.credit_async(1, { "deep" => Array.new(1) { (1..200).reduce([]) { |inner, _| [inner] } } }) } =>
        /nested more than 100 deep/,
    }
    refused.each do |call, message|
      error = assert_raises(Gantry::Asynchronous::NotJSON, &call)
      assert_kind_of ArgumentError, error
      assert_match message, error.message
      assert_match(/come back as they were/, error.message)
    end

    # Calls Ruby would refuse are refused here, not on the worker.
    wrong = {
      -> { ledger.credit_async } => /wrong number of arguments \(given 0, expected 1\.\.2\) for credit\(amount/,
      -> { ledger.credit_async(1, "a", "b") } => /given 3, expected 1\.\.2/,
      -> { ledger.credit_async(1, currenzy: "EUR") } => /unknown keyword: :currenzy/,
      -> { ledger.credit_async(1) { :block } } => /a block cannot go through a job/,
      -> { AsyncLedger.new(nil, "unsaved").credit_async(1) } => /this AsyncLedger has no id \(is it saved\?\)/,
    }
    wrong.each do |call, message|
      error = assert_raises(ArgumentError, &call)
      assert_match message, error.message
    end
    assert_empty spy.enqueued, "nothing refused was enqueued"

    note = { "at" => "2026-01-01T00:00:09.250000Z", "n" => [1, 2.5, nil, true, { "deep" => ["é"] }] }
    ledger.credit_async(1, note)
    assert_equal [["AsyncLedger#credit", { "id" => ledger.id, "args" => [1, note] },
                   { queue: AsyncLedger::QUEUE, priority: 7, max_attempts: 3 }]], spy.enqueued
  end

  def test_a_missing_record_fails_the_job_for_good
    queue = unique_queue("rb-async")
    ledger = AsyncLedger.create("di")
    id = ledger.gantry_enqueue(:credit, args: [1], queue: queue)
    AsyncLedger.delete(ledger.id)
    # Args that a method changed since no longer fit, and args that are not what perform_asynchronously sends.
    changed = @gantry.enqueue("AsyncLedger#credit", { "id" => AsyncLedger.create("ed").id, "args" => [] },
                              queue: queue, max_attempts: 3)
    garbled = @gantry.enqueue("AsyncLedger#credit", ["not", "a", "hash"], queue: queue, max_attempts: 3)

    assert start_worker(worker([queue], handlers: Gantry::Asynchronous.handlers(AsyncLedger), max_jobs: 3)).join(10),
           "the worker did not finish"
    job = @gantry.job(id)
    assert_equal ["dead", 1, 3], job.values_at("state", "attempt", "max_attempts")
    error = job["errors"].last
    assert_equal "Gantry::Asynchronous::RecordNotFound", error["kind"]
    assert_match(/AsyncLedger #{ledger.id} was not found \(AsyncLedger\.find\(#{ledger.id}\) returned nil\)/,
                 error["message"])
    assert_equal ["dead", 1, "Gantry::PermanentError"],
                 @gantry.job(changed).then { |j| [j["state"], j["attempt"], j["errors"].last["kind"]] }
    assert_match(/wrong number of arguments \(given 0, expected 1..2\) .*\(the method changed since/,
                 @gantry.job(changed)["errors"].last["message"])
    assert_equal ["dead", "Gantry::PermanentError"],
                 @gantry.job(garbled).then { |j| [j["state"], j["errors"].last["kind"]] }
    assert_empty AsyncLedger::CALLS
  end

  def test_a_finder_error_saying_not_found_is_for_good_and_others_are_retried
    Gantry::Asynchronous.not_found_errors << "AsyncVaultGone"
    queue = unique_queue("rb-async")
    gone = AsyncVault.new("gone-1").gantry_enqueue(:open, queue: queue)
    down = AsyncVault.new("v-2").gantry_enqueue(:open, queue: queue)
    assert start_worker(worker([queue], handlers: Gantry::Asynchronous.handlers(AsyncVault), max_jobs: 2)).join(10),
           "the worker did not finish"

    gone = @gantry.job(gone)
    assert_equal ["dead", 1, "AsyncVaultGone", "vault gone-1 is gone"],
                 [*gone.values_at("state", "attempt"), *gone["errors"].last.values_at("kind", "message")]
    retried = @gantry.job(down)
    assert_equal ["scheduled", 1, 5, "IOError"],
                 [*retried.values_at("state", "attempt", "max_attempts"), retried["errors"].last["kind"]]
    @gantry.cancel_job(down)
  ensure
    Gantry::Asynchronous.not_found_errors.delete("AsyncVaultGone")
  end

  def test_declaration_mistakes_are_refused
    anonymous = lambda do |&body|
      klass = Class.new do
        include Gantry::Asynchronous

        def run(_x = nil); end
      end
      klass.class_eval(&body)
    end
    {
      -> { anonymous.call { perform_asynchronously :nope, type: "x.nope" } } => /#nope is not defined/,
      -> { anonymous.call { perform_asynchronously :run, type: "x.run", qeue: "a" } } => /unknown option :qeue/,
      -> { anonymous.call { perform_asynchronously :run } } => /an anonymous class needs type:/,
      -> { anonymous.call { perform_asynchronously :run, :to_s, as: :both } } => /as: and type: name one method/,
      -> { anonymous.call { perform_asynchronously :run, as: :to_s, type: "x.run2" } } => /#to_s exists already/,
      -> { anonymous.call { perform_asynchronously :run, type: "ledger.close" } } =>
        /the job type "ledger.close" is AsyncLedger#close's already/,
      -> { anonymous.call { perform_asynchronously :run, type: "bad\ntype" } } => /without control characters/,
      -> { anonymous.call { perform_asynchronously :run, type: "x.run3", finder: 42 } } => /finder: is a class method/,
      -> { AsyncLedger.send(:perform_asynchronously, :credit) } => /AsyncLedger#credit is declared already/,
    }.each do |declare, message|
      error = assert_raises(ArgumentError, &declare)
      assert_match message, error.message
    end
  end

  def test_a_declarations_own_client_and_finder
    spy = EnqueueSpy.new
    found = Thread::Queue.new
    type = "rb.async.#{SecureRandom.hex(4)}"
    klass = Class.new do
      include Gantry::Asynchronous
      attr_reader :key

      def initialize(key)
        @key = key
      end

      def touch(times)
        times
      end
      perform_asynchronously :touch, type: type, id: :key, client: -> { spy },
                                     finder: ->(key) { new(key).tap { found << key } }, tags: ["touch"]
    end
    assert_equal "spy-1", klass.new("k-1").touch_async(2)
    assert_equal [[type, { "id" => "k-1", "args" => [2] }, { tags: ["touch"] }]], spy.enqueued

    handler = Gantry::Asynchronous.handlers(klass).fetch(type)
    assert_equal 2, handler.call({ "id" => "k-1", "args" => [2] }, nil)
    assert_equal "k-1", found.pop
  end

  def test_through_the_active_job_adapter_and_its_worker
    previous = ActiveJob::Base.queue_adapter
    Gantry::Asynchronous.client = nil
    adapter = ActiveJob::QueueAdapters::GantryAdapter.new(url: url, tags: ["rails"], max_attempts: 4)
    ActiveJob::Base.queue_adapter = adapter
    assert_same adapter.client, Gantry::Asynchronous.client

    queue = unique_queue("rb-async-aj")
    ledger = AsyncLedger.create("fa")
    id = ledger.gantry_enqueue(:credit, args: [7], kwargs: { currency: "CHF" }, queue: queue)
    job = @gantry.job(id)
    # The adapter's enqueue keywords are defaults under the declaration's (max_attempts: 3) and the call's.
    assert_equal [queue, ["rails"], 3, 7], job.values_at("queue", "tags", "max_attempts", "priority")

    work = Gantry::ActiveJobWorker.new(url: url, queues: [queue], id: "rb-async-aj-#{SecureRandom.hex(4)}",
                                       wait_ms: 500, logger: QUIET_LOGGER, max_jobs: 1)
    assert_includes work.handlers.keys, "AsyncLedger#credit"
    assert_includes work.handlers.keys, "active_job"
    assert start_worker(work).join(10), "the worker did not finish"
    assert_equal [[ledger.id, 7, "CHF"]], calls(1).map { |call| call.values_at("id", "amount", "currency") }
    assert_equal "completed", @gantry.job(id)["state"]

    # With neither a client set nor the Gantry adapter: a client of its own, to $GANTRY_URL, with a short timeout.
    ActiveJob::Base.queue_adapter = :inline
    own = Gantry::Asynchronous.client
    refute_same adapter.client, own
    assert_equal [Gantry::Asynchronous::DEFAULT_TIMEOUT, Gantry::Client.parse_url(url).port], [own.timeout, own.port]
    other = ledger.gantry_enqueue(:credit, args: [1], queue: queue, delay_ms: 60_000)
    assert_equal "scheduled", @gantry.job(other)["state"]
    @gantry.cancel_job(other)
  ensure
    ActiveJob::Base.queue_adapter = previous
    adapter&.client&.close
    own&.close
  end
end
