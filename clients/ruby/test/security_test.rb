# frozen_string_literal: true

require_relative "support"
require "pp"

# Tokens and TLS without a broker (they run with or without GANTRY_URL: `ruby -Ilib -Itest test/security_test.rb`):
# reading URLs, which token wins, nothing showing a token, and TLS against stand-ins that speak it (a throwaway
# CA: trust, names, client certificates).
class SecurityTest < Minitest::Test
  include GantryTest
  Fake = GantryTest::FakeBroker
  Certs = GantryTest::Certs
  SETTINGS = %w[GANTRY_TOKEN GANTRY_CA_FILE GANTRY_CERT_FILE GANTRY_KEY_FILE].freeze

  def setup
    @saved_env = SETTINGS.to_h { |name| [name, ENV.delete(name)] }
  end

  def teardown
    super
    @fakes&.each(&:close)
    @saved_env.each { |name, value| value.nil? ? ENV.delete(name) : ENV.store(name, value) }
  end

  def fake(**options, &handler)
    handler ||= ->(request, *) { request["method"] == "hello" ? Fake.hello(request) : Fake.result(request, {}) }
    (@fakes ||= []) << Fake.new(**options, &handler)
    @fakes.last
  end

  def tls_fake(cert: "server", client_ca: nil)
    fake(tls: Certs.server_context(cert: cert, client_ca: client_ca))
  end

  def hello_tokens(broker)
    broker.seen.select { |r| r["method"] == "hello" }.map { |r| r["params"]["token"] }
  end

  # --- URLs ---

  def test_url_forms
    plain = Gantry::Client.parse_url("127.0.0.1:7440")
    assert_equal ["127.0.0.1", 7440, false, nil], [plain.host, plain.port, plain.tls?, plain.token]
    secure = Gantry::Client.parse_url("gantrys://s3cret@jobs.internal:7443")
    assert_equal ["jobs.internal", 7443, true, "s3cret"], [secure.host, secure.port, secure.tls?, secure.token]
    assert_equal [7440, true, nil], Gantry::Client.parse_url("gantrys://jobs.internal/").then { |a| [a.port, a.tls?, a.token] }
    assert_equal ["::1", 7441, true], Gantry::Client.parse_url("gantrys://t@[::1]:7441").then { |a| [a.host, a.port, a.tls?] }
    assert_equal "p@ss:w/rd %+", Gantry::Client.parse_url("gantry://p%40ss%3Aw%2Frd%20%25+@h:1").token # percent-decoded
    assert_equal "a@b", Gantry::Client.parse_url("gantry://a@b@h:1").token # the last @ ends the token
    assert_equal "jalapeño", Gantry::Client.parse_url("gantry://jalape%C3%B1o@h").token
    assert_nil Gantry::Client.parse_url("gantry://@h:1").token
    refute Gantry::Client.parse_url("GANTRY://h").tls?
    assert Gantry::Client.parse_url("Gantrys://h").tls?
    assert_equal ["h", 1], Gantry::Client.address("gantrys://tok@h:1")
  end

  def test_a_bad_url_is_refused_without_showing_its_token
    ["sekrit@h:1",               # a token needs a scheme
     "https://sekrit@h:1",       # not gantry:// or gantrys://
     "gantrys://sekrit@h:99999", # no such port
     "gantry://sekrit%zz@h:1",   # not percent-encoding
     "gantrys://sekrit@h:1/x"].each do |url|
      error = assert_raises(ArgumentError, url) { Gantry::Client.new(url: url) }
      refute_match(/sekrit/, error.message)
      assert_match(/\*\*\*@/, error.message)
    end
  end

  def test_the_token_keyword_beats_the_urls_which_beats_the_environment
    broker = fake
    with_env("GANTRY_TOKEN" => "from-env") do
      client(url: "gantry://from-url@#{broker.url}", token: "from-keyword").stats
      client(url: "gantry://from-url@#{broker.url}").stats
      client(url: broker.url).stats
      client(url: broker.url, token: "").stats # empty is no token: the next in line
    end
    client(url: broker.url).stats # none at all: hello has no token
    assert_equal ["from-keyword", "from-url", "from-env", "from-env", nil], hello_tokens(broker)
    assert_equal({ "client" => "ruby-tests", "protocol" => 1 }, broker.seen.last(2).first["params"])
  end

  def test_the_token_is_sent_again_in_hello_on_every_connection
    broker = fake do |request, _fake, socket|
      next Fake.hello(request) if request["method"] == "hello"

      socket.close if request["method"] == "drop"
      Fake.result(request, {}) unless request["method"] == "drop"
    end
    gantry = client(url: broker.url, token: "t-1")
    gantry.stats
    assert_raises(Gantry::ConnectionError) { gantry.call("drop") }
    gantry.stats
    assert_equal %w[t-1 t-1], hello_tokens(broker)
  end

  def test_nothing_shows_the_token
    gantry = Gantry::Client.new(url: "gantrys://url-sekrit@127.0.0.1:7443", token: "kw-sekrit", ca_file: nil)
    worker = Gantry::Worker.new(url: "gantrys://url-sekrit@127.0.0.1:7443", token: "kw-sekrit", queues: ["q"])
    address = Gantry::Client.parse_url("gantrys://url-sekrit@127.0.0.1:7443")
    shown = [gantry.inspect, gantry.pretty_inspect, gantry.url, worker.inspect, worker.pretty_inspect,
             address.inspect, address.pretty_inspect, address.to_s]
    begin
      require "active_job"
      require "active_job/queue_adapters/gantry_adapter"
      adapter = ActiveJob::QueueAdapters::GantryAdapter.new(url: "gantrys://url-sekrit@h:1", token: "kw-sekrit")
      shown << adapter.inspect
      adapter.client
      shown << adapter.inspect << adapter.pretty_inspect
    rescue LoadError
      nil # no ActiveJob here: the adapter is not shown
    end
    shown.each { |text| refute_match(/sekrit/, text) }
    assert_equal "gantrys://127.0.0.1:7443", gantry.url
    assert_match(/with a token/, gantry.inspect)
  end

  # --- errors ---

  def test_forbidden_and_unauthorized_are_in_the_error_table
    forbidden = Gantry::RPCError.from({ "code" => -32_009, "message" => "no", "data" => { "role" => "producer" } })
    assert_instance_of Gantry::Forbidden, forbidden
    assert_equal ["forbidden", false], [forbidden.name, forbidden.retryable?]
    unauthorized = Gantry::RPCError.from({ "code" => -32_001, "message" => "no" })
    assert_instance_of Gantry::Unauthorized, unauthorized
    assert_equal ["unauthorized", false], [unauthorized.name, unauthorized.retryable?]
    assert_operator Gantry::TLSError, :<, Gantry::ConnectionError
  end

  # A refused hello raises the broker's error from the call that connected: one hello, no reconnecting in a loop.
  def test_a_refused_token_raises_unauthorized_from_the_call_once
    broker = fake do |request|
      if request["method"] == "hello"
        Fake.error(request, -32_001, "Unknown token. This broker requires a token.")
      else
        Fake.error(request, -32_001, "Send hello first.")
      end
    end
    gantry = client(url: broker.url, token: "wrong")
    error = assert_raises(Gantry::Unauthorized) { gantry.stats }
    assert_equal [-32_001, "unauthorized"], [error.code, error.name]
    refute gantry.connected?
    sleep 0.2
    assert_equal [1, %w[hello]], [broker.connections, broker.seen.map { |r| r["method"] }]
    assert_raises(Gantry::Unauthorized) { gantry.stats } # the next call tries once more, and only once
    assert_equal [2, %w[hello hello]], [broker.connections, broker.seen.map { |r| r["method"] }]
  end

  def test_a_worker_whose_token_is_refused_stops_with_the_error
    broker = fake { |request| Fake.error(request, -32_001, "Unknown token.") }
    worker = Gantry::Worker.new(url: broker.url, token: "wrong", queues: ["q"], handlers: { "t" => ->(_) {} },
                                logger: QUIET_LOGGER)
    thread = Thread.new { worker.run }
    thread.report_on_exception = false
    assert_raises(Gantry::Unauthorized) { assert thread.join(5), "the worker kept trying" }
    assert_equal 1, broker.connections
    assert_equal :stopped, worker.state
  end

  def test_a_worker_forbidden_to_reserve_stops_with_the_error
    broker = fake do |request|
      next Fake.hello(request) if request["method"] == "hello"

      Fake.error(request, -32_009, "The token has the role producer, which may not call reserve.",
                 { "role" => "producer", "method" => "reserve" })
    end
    worker = Gantry::Worker.new(url: broker.url, queues: ["q"], handlers: { "t" => ->(_) {} }, logger: QUIET_LOGGER)
    thread = Thread.new { worker.run }
    thread.report_on_exception = false
    error = assert_raises(Gantry::Forbidden) { assert thread.join(5), "the worker kept trying" }
    assert_equal "reserve", error.data["method"]
    assert_equal 1, broker.seen.count { |r| r["method"] == "reserve" }
  end

  # --- TLS options ---

  def test_tls_options
    assert Gantry::Client.new(url: "127.0.0.1:7440", tls: true).tls?
    assert Gantry::Client.new(url: "gantry://127.0.0.1:7440", tls: true).tls?
    assert Gantry::Client.new(url: "gantrys://127.0.0.1:7440").tls?
    refute Gantry::Client.new(url: "127.0.0.1:7440").tls?
    assert_equal "gantrys://127.0.0.1:7440", Gantry::Client.new(url: "127.0.0.1:7440", tls: true).url
    error = assert_raises(ArgumentError) { Gantry::Client.new(url: "gantrys://h:1", tls: false) }
    assert_match(/tls: false/, error.message)
    # a CA or a certificate for a plain connection is a mistake (the token would go in the clear): refused
    error = assert_raises(ArgumentError) { Gantry::Client.new(url: "h:1", ca_file: Certs.path("ca.pem")) }
    assert_match(/gantrys:\/\/h:1/, error.message)
    # ... but the environment's apply only to TLS connections
    with_env("GANTRY_CA_FILE" => "/nonexistent/ca.pem") { refute Gantry::Client.new(url: "h:1").tls? }
    error = assert_raises(ArgumentError) { Gantry::Client.new(url: "gantrys://h:1", ca_file: "/nonexistent/ca.pem") }
    assert_match(%r{ca_file: /nonexistent/ca.pem \(GANTRY_CA_FILE\)}, error.message)
    error = with_env("GANTRY_KEY_FILE" => Certs.path("client-key.pem")) do
      assert_raises(ArgumentError) { Gantry::Client.new(url: "gantrys://h:1") }
    end
    assert_match(/cert_file/, error.message)
  end

  # --- TLS against stand-ins ---

  def test_tls_with_the_ca_file_sends_the_token_over_it
    broker = tls_fake
    gantry = client(url: "gantrys://tok%2Fen@127.0.0.1:#{broker.port}", ca_file: Certs.path("ca.pem"))
    assert_equal({}, gantry.stats)
    assert gantry.tls?
    with_env("GANTRY_CA_FILE" => Certs.path("ca.pem"), "GANTRY_TOKEN" => "env-token") do
      assert_equal({}, client(url: "127.0.0.1:#{broker.port}", tls: true).stats) # both from the environment
    end
    assert_equal({}, client(url: "gantrys://localhost:#{broker.port}", ca_file: Certs.path("ca.pem")).stats) # DNS SAN
    assert_equal ["tok/en", "env-token", nil], hello_tokens(broker)
  end

  def test_an_untrusted_broker_certificate_is_a_tls_error_that_names_ca_file
    broker = tls_fake
    error = assert_raises(Gantry::TLSError) { client(url: "gantrys://127.0.0.1:#{broker.port}").stats }
    assert_match(/not trusted/, error.message)
    assert_match(/pass ca_file: \(GANTRY_CA_FILE\)/, error.message)
    error = assert_raises(Gantry::TLSError) do
      client(url: "gantrys://127.0.0.1:#{broker.port}", ca_file: Certs.path("other-ca.pem")).stats
    end
    assert_match(/the CA in ca_file .*other-ca.pem did not sign it/, error.message)
    assert_kind_of Gantry::ConnectionError, error
    assert_empty broker.seen # nothing was sent, the token least of all
  end

  def test_the_broker_certificate_must_be_for_the_host
    broker = tls_fake(cert: "elsewhere") # signed by the test CA, for elsewhere.test only
    %W[127.0.0.1 localhost].each do |host|
      error = assert_raises(Gantry::TLSError) do
        client(url: "gantrys://#{host}:#{broker.port}", ca_file: Certs.path("ca.pem")).stats
      end
      assert_match(/the broker's certificate is not for #{host}/, error.message)
    end
  end

  def test_mutual_tls
    broker = tls_fake(client_ca: "ca.pem")
    url = "gantrys://127.0.0.1:#{broker.port}"
    error = assert_raises(Gantry::TLSError) { client(url: url, ca_file: Certs.path("ca.pem")).stats }
    assert_match(/wants a client certificate.*pass cert_file: and key_file: \(GANTRY_CERT_FILE, GANTRY_KEY_FILE\)/,
                 error.message)
    mutual = client(url: url, token: "t", ca_file: Certs.path("ca.pem"), cert_file: Certs.path("client.pem"),
                    key_file: Certs.path("client-key.pem"))
    assert_equal({}, mutual.stats)
    # the key in the certificate's file; the files from the environment
    both = File.join(Certs.dir, "client-and-key.pem")
    File.write(both, File.read(Certs.path("client.pem")) + File.read(Certs.path("client-key.pem")))
    with_env("GANTRY_CA_FILE" => Certs.path("ca.pem"), "GANTRY_CERT_FILE" => both) do
      assert_equal({}, client(url: url).stats)
    end
    # a certificate from a CA the broker does not trust
    error = assert_raises(Gantry::TLSError) do
      client(url: url, ca_file: Certs.path("ca.pem"), cert_file: Certs.path("other-server.pem"),
             key_file: Certs.path("other-server-key.pem")).stats
    end
    assert_match(/refused the client certificate in cert_file .*other-server.pem/, error.message)
    # a key that is not the certificate's
    error = assert_raises(Gantry::TLSError) do
      client(url: url, ca_file: Certs.path("ca.pem"), cert_file: Certs.path("client.pem"),
             key_file: Certs.path("server-key.pem")).stats
    end
    assert_match(/key_file the private key of cert_file's certificate/, error.message)
    assert_equal ["t", nil], hello_tokens(broker)
  end

  def test_tls_to_a_plain_port_and_plain_to_a_tls_port_fail_clearly
    plain = fake
    error = assert_raises(Gantry::ConnectionError) do
      client(url: "gantrys://127.0.0.1:#{plain.port}", ca_file: Certs.path("ca.pem"), connect_timeout: 0.5).stats
    end
    assert_match(/TLS/, error.message)
    secure = tls_fake
    error = assert_raises(Gantry::ConnectionError) { client(url: "127.0.0.1:#{secure.port}").stats }
    refute_kind_of Gantry::TLSError, error
    assert_match(/if it serves TLS there, use gantrys:\/\/127.0.0.1:#{secure.port}/, error.message)
  end

  def test_a_worker_stops_on_a_tls_error
    broker = tls_fake
    worker = Gantry::Worker.new(url: "gantrys://127.0.0.1:#{broker.port}", queues: ["q"], handlers: { "t" => ->(_) {} },
                                logger: QUIET_LOGGER)
    thread = Thread.new { worker.run }
    thread.report_on_exception = false
    error = assert_raises(Gantry::TLSError) { assert thread.join(5), "the worker kept trying" }
    assert_match(/ca_file/, error.message)
  end
end
