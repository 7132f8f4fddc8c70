# frozen_string_literal: true

require_relative "support"

# Against brokers with tokens and TLS, which scripts/with_broker.py starts beside the plain one when it can and
# describes in the environment; each test is skipped when what it needs is not there:
#   GANTRY_SECURE_URL   gantrys://127.0.0.1:PORT: TLS, tokens required
#   GANTRY_MTLS_URL     gantrys://127.0.0.1:PORT: TLS, tokens and a client certificate from the test CA required
#   GANTRY_TEST_CA, GANTRY_TEST_CLIENT_CERT, GANTRY_TEST_CLIENT_KEY             PEM paths
#   GANTRY_TEST_ADMIN_TOKEN, GANTRY_TEST_WORKER_TOKEN, GANTRY_TEST_PRODUCER_TOKEN,
#   GANTRY_TEST_MAIL_PRODUCER_TOKEN (a producer limited to the queue "mail")
class SecureBrokerTest < Minitest::Test
  include GantryTest
  SETTINGS = %w[GANTRY_TOKEN GANTRY_CA_FILE GANTRY_CERT_FILE GANTRY_KEY_FILE].freeze
  TOKENS = { admin: "GANTRY_TEST_ADMIN_TOKEN", worker: "GANTRY_TEST_WORKER_TOKEN",
             producer: "GANTRY_TEST_PRODUCER_TOKEN", mail_producer: "GANTRY_TEST_MAIL_PRODUCER_TOKEN" }.freeze

  def setup
    @saved_env = SETTINGS.to_h { |name| [name, ENV.delete(name)] } # what a test uses, it says
  end

  def teardown
    super
    @saved_env.each { |name, value| value.nil? ? ENV.delete(name) : ENV.store(name, value) }
  end

  def env(name)
    value = ENV.fetch(name, "").strip
    value.empty? ? nil : value
  end

  def need(*names)
    missing = names.reject { |name| env(name) }
    skip "no #{missing.join(", ")}: scripts/with_broker.py sets them when it runs a broker with tokens and TLS" if missing.any?
  end

  def token(role)
    need(TOKENS.fetch(role))
    env(TOKENS.fetch(role))
  end

  def secure_url
    need("GANTRY_SECURE_URL", "GANTRY_TEST_CA")
    env("GANTRY_SECURE_URL")
  end

  def ca
    need("GANTRY_TEST_CA")
    env("GANTRY_TEST_CA")
  end

  # A client of the TLS broker with the test CA and the token of `role`.
  def secure(role, **options)
    client(url: secure_url, token: token(role), ca_file: ca, **options)
  end

  def secure_worker(role, queues, **options)
    Gantry::Worker.new(url: secure_url, token: token(role), ca_file: ca, queues: queues, wait_ms: 500,
                       id: "rb-sec-#{SecureRandom.hex(4)}", logger: QUIET_LOGGER, **options)
  end

  def percent_encoded(text)
    text.b.gsub(/[^A-Za-z0-9\-._~]/n) { |byte| format("%%%02X", byte.ord) }
  end

  def test_the_admin_token_with_the_ca_file_may_do_anything
    gantry = secure(:admin)
    assert gantry.stats["broker"]
    assert gantry.tls?
    assert_kind_of Array, gantry.workers # admin only
    queue = unique_queue("rb-sec")
    id = gantry.enqueue("sec.admin", [], queue: queue)
    assert_equal [id], gantry.reserve(queue, wait_ms: 1000).map(&:id)
    assert_equal({ "ok" => true }, gantry.ack(id))
  end

  def test_without_ca_file_the_brokers_certificate_is_not_trusted
    error = assert_raises(Gantry::TLSError) { client(url: secure_url, token: token(:admin)).stats }
    assert_match(/not trusted/, error.message)
    assert_match(/ca_file: \(GANTRY_CA_FILE\)/, error.message)
    refute_includes error.message, token(:admin)
  end

  def test_a_wrong_or_missing_token_is_unauthorized_once_per_call
    wrong = "not-a-token-#{SecureRandom.hex(8)}"
    gantry = client(url: secure_url, token: wrong, ca_file: ca)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    2.times do # each call tries once: a new connection, one hello, its error
      error = assert_raises(Gantry::Unauthorized) { gantry.stats }
      assert_equal [-32_001, "unauthorized"], [error.code, error.name]
      refute_includes error.message, wrong
      refute gantry.connected?
    end
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 5
    assert_raises(Gantry::Unauthorized) { client(url: secure_url, ca_file: ca).stats } # no token at all

    worker = Gantry::Worker.new(url: secure_url, token: wrong, ca_file: ca, queues: [unique_queue("rb-sec")],
                                handlers: { "t" => ->(_) {} }, logger: QUIET_LOGGER)
    thread = Thread.new { worker.run }
    thread.report_on_exception = false
    assert_raises(Gantry::Unauthorized) { assert thread.join(10), "the worker kept reconnecting" }
  end

  def test_a_producer_enqueues_but_may_not_reserve
    producer = secure(:producer)
    queue = unique_queue("rb-sec")
    id = producer.enqueue("sec.produce", { "n" => 1 }, queue: queue)
    assert_equal "available", producer.job(id)["state"]
    assert_equal 2, producer.enqueue_batch([{ type: "sec.produce", queue: queue }, { type: "sec.produce", queue: queue }]).size
    assert producer.stats["broker"]
    error = assert_raises(Gantry::Forbidden) { producer.reserve(queue, wait_ms: 0) }
    assert_equal [-32_009, "forbidden"], [error.code, error.name]
    refute error.retryable?
    assert_equal "producer", error.data["role"] if error.data.is_a?(Hash) && error.data.key?("role")
    assert_equal "reserve", error.data["method"] if error.data.is_a?(Hash) && error.data.key?("method")
    assert_raises(Gantry::Forbidden) { producer.workers } # admin only
    assert_equal "available", producer.job(id)["state"] # the connection still works
    assert_raises(Gantry::Forbidden) { secure(:worker).enqueue("sec.produce", [], queue: queue) }
  end

  def test_a_worker_with_the_worker_token_runs_what_the_producer_enqueued
    producer = secure(:producer)
    queue = unique_queue("rb-sec")
    id = producer.enqueue("sec.echo", { "n" => 7 }, queue: queue)
    worker = secure_worker(:worker, [queue], concurrency: 2, max_jobs: 1,
                                             handlers: { "sec.echo" => ->(args, job) { { "n" => args["n"], "id" => job.id } } })
    thread = Thread.new { worker.run }
    assert thread.join(15), "the worker did not finish the job"
    assert_equal [{ "n" => 7, "id" => id }, "completed"], producer.job(id).values_at("result", "state")
  end

  def test_a_producer_limited_to_mail_may_not_enqueue_elsewhere
    mail = secure(:mail_producer)
    assert_kind_of String, mail.enqueue("sec.mail", { "to" => "ana@example.com" }, queue: "mail")
    error = assert_raises(Gantry::Forbidden) { mail.enqueue("sec.mail", [], queue: "other") }
    assert_equal [-32_009, "forbidden"], [error.code, error.name]
    assert_equal "other", error.data["queue"] if error.data.is_a?(Hash) && error.data.key?("queue")
    assert_raises(Gantry::Forbidden) do # all or none: one job for another queue refuses the batch
      mail.enqueue_batch([{ type: "sec.mail", queue: "mail" }, { type: "sec.mail", queue: "other" }])
    end
    assert_kind_of String, mail.enqueue("sec.mail", [], queue: "mail")
  end

  def test_the_token_in_the_urls_userinfo
    url = secure_url.sub(%r{\Agantrys://}i, "gantrys://#{percent_encoded(token(:admin))}@")
    gantry = client(url: url, ca_file: ca)
    assert gantry.stats["broker"]
    refute_includes gantry.inspect, token(:admin)
    with_env("GANTRY_TOKEN" => token(:admin), "GANTRY_CA_FILE" => ca) do # and both from the environment
      assert client(url: secure_url).stats["broker"]
    end
  end

  def test_mutual_tls_needs_the_client_certificate
    need("GANTRY_MTLS_URL", "GANTRY_TEST_CA", "GANTRY_TEST_CLIENT_CERT", "GANTRY_TEST_CLIENT_KEY")
    url = env("GANTRY_MTLS_URL")
    mutual = client(url: url, token: token(:admin), ca_file: ca, cert_file: env("GANTRY_TEST_CLIENT_CERT"),
                    key_file: env("GANTRY_TEST_CLIENT_KEY"))
    assert mutual.stats["broker"]
    error = assert_raises(Gantry::TLSError) { client(url: url, token: token(:admin), ca_file: ca).stats }
    assert_match(/cert_file: and key_file: \(GANTRY_CERT_FILE, GANTRY_KEY_FILE\)/, error.message)
    with_env("GANTRY_CERT_FILE" => env("GANTRY_TEST_CLIENT_CERT"), "GANTRY_KEY_FILE" => env("GANTRY_TEST_CLIENT_KEY")) do
      assert client(url: url, token: token(:admin), ca_file: ca).stats["broker"]
    end
  end

  def test_active_job_takes_the_token_and_tls_from_the_environment
    skip "no ActiveJob here (Debian: ruby-activejob)" unless defined?(GantrySecureJob)

    queue = unique_queue("rb-sec-aj")
    adapter = with_env("GANTRY_URL" => secure_url, "GANTRY_TOKEN" => token(:producer), "GANTRY_CA_FILE" => ca) do
      ActiveJob::QueueAdapters::GantryAdapter.new.tap(&:client) # :gantry makes it so
    end
    previous = ActiveJob::Base.queue_adapter
    begin
      ActiveJob::Base.queue_adapter = adapter
      job = GantrySecureJob.set(queue: queue).perform_later("over TLS")
    ensure
      ActiveJob::Base.queue_adapter = previous
      adapter.client.close
    end
    assert_equal [queue, "active_job"], secure(:admin).job(job.provider_job_id).values_at("queue", "type")
    worker = Gantry::ActiveJobWorker.new(url: secure_url, token: token(:worker), ca_file: ca, queues: [queue],
                                         max_jobs: 1, wait_ms: 500, id: "rb-sec-aj-#{SecureRandom.hex(4)}",
                                         logger: QUIET_LOGGER)
    assert Thread.new { worker.run }.join(15), "the ActiveJob worker did not perform the job"
    assert_equal "over TLS", GANTRY_SECURE_PERFORMED.pop
  end
end

begin
  require "active_job"
  require "active_job/queue_adapters/gantry_adapter"
  require "gantry/active_job_worker"

  ActiveJob::Base.logger = Logger.new(nil)
  GANTRY_SECURE_PERFORMED = Thread::Queue.new

  class GantrySecureJob < ActiveJob::Base
    def perform(text)
      GANTRY_SECURE_PERFORMED << text
    end
  end
rescue LoadError
  nil # no ActiveJob: its test is skipped
end
