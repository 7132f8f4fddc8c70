# frozen_string_literal: true

# What the tests share, without needing a broker (test_helper.rb adds that need): the files that test without
# one (security_test.rb) require only this.
$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
require "minitest/autorun"
require "json"
require "securerandom"
require "socket"
require "gantry"

module GantryTest
  URL = ENV.fetch("GANTRY_URL", nil)
  QUIET_LOGGER = Logger.new(nil)

  def url
    URL
  end

  def client(**options)
    (@clients ||= []) << Gantry::Client.new(url: URL, name: "ruby-tests", **options)
    @clients.last
  end

  def unique_queue(prefix = "rb")
    "#{prefix}-#{SecureRandom.hex(6)}"
  end

  # Waits until the block returns something truthy (and returns it), failing after `timeout` seconds.
  def eventually(timeout = 5, message = "the condition never held")
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      value = yield
      return value if value
      flunk("#{message} (within #{timeout} s)") if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      sleep 0.05
    end
  end

  # Waits until the block returns something truthy, for up to `timeout` seconds, and returns whether it did.
  # For threads that must not fail the test themselves (a fake broker's, a spy's).
  def self.wait_until(timeout = 5)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    sleep 0.01 until (held = yield) || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    held
  end

  # Whether the Worker jobs with these ids have all finished and wait for their acks: each one's thread
  # ("gantry-job ID") sleeps, which after a handler that does not block it does only waiting for its ack. A test
  # holds one ack until then, so that the other jobs finish while it is in flight, whatever the scheduling.
  def self.waiting_for_acks?(ids)
    threads = Thread.list.select { |thread| ids.include?(thread.name.to_s.delete_prefix("gantry-job ")) }
    threads.size == ids.size && threads.all? { |thread| thread.status == "sleep" }
  end

  # Runs the block with ENV changed (nil: unset), then puts ENV back.
  def with_env(values)
    saved = values.keys.to_h { |name| [name, ENV.fetch(name, nil)] }
    values.each { |name, value| value.nil? ? ENV.delete(name) : ENV.store(name, value) }
    yield
  ensure
    saved&.each { |name, value| value.nil? ? ENV.delete(name) : ENV.store(name, value) }
  end

  # Runs a worker in a thread; returns the thread (its value is run's).
  def start_worker(worker)
    thread = Thread.new { worker.run }
    thread.report_on_exception = true
    (@workers ||= []) << [worker, thread]
    eventually(5, "the worker never connected") { worker.session_id }
    thread
  end

  def teardown
    (@workers || []).each do |worker, thread|
      worker.stop
      thread.join(5)
    end
    (@clients || []).each(&:close)
    super
  end

  # A broker stand-in on a local port, for what a real broker cannot be made to do on cue (-32004, answers in a
  # chosen order). `handler` gets each request (a Hash) and the FakeBroker; it returns a response Hash, an
  # Array of lines to write, or nil (answer nothing now). `requests` records every request line. With `tls` (an
  # OpenSSL::SSL::SSLContext) it speaks TLS; `tls_errors` records the handshakes that failed.
  class FakeBroker
    attr_reader :requests, :connections, :tls_errors

    def initialize(tls: nil, &handler)
      @handler = handler
      @server = TCPServer.new("127.0.0.1", 0)
      @listener = tls ? OpenSSL::SSL::SSLServer.new(@server, tls) : @server
      @requests = Thread::Queue.new
      @tls_errors = Thread::Queue.new
      @connections = 0
      @sockets = []
      @thread = Thread.new { accept_loop }
    end

    def port
      @server.addr[1]
    end

    def url
      "127.0.0.1:#{port}"
    end

    def accept_loop
      loop do
        serve(@listener.accept)
      rescue OpenSSL::SSL::SSLError, SystemCallError => e
        @tls_errors << e
      end
    rescue IOError
      nil
    end

    def serve(socket)
      @connections += 1
      @sockets << socket
      socket.sync = true
      Thread.new do
        while (line = socket.gets)
          request = JSON.parse(line)
          @requests << request
          reply = @handler.call(request, self, socket)
          (reply.is_a?(Array) ? reply : [reply]).compact.each do |response|
            socket.write((response.is_a?(String) ? response : JSON.generate(response)) + "\n")
          end
        end
      rescue IOError, SystemCallError, OpenSSL::SSL::SSLError, JSON::ParserError
        nil
      end
    end

    def self.result(request, result)
      { "jsonrpc" => "2.0", "id" => request["id"], "result" => result }
    end

    def self.error(request, code, message, data = nil)
      error = { "code" => code, "message" => message }
      error["data"] = data if data
      { "jsonrpc" => "2.0", "id" => request["id"], "error" => error }
    end

    def self.hello(request)
      result(request, { "broker" => "fake", "protocol" => 1, "session_id" => SecureRandom.uuid })
    end

    # Every request recorded so far.
    def seen
      list = []
      list << @requests.pop until @requests.empty?
      (@seen ||= []).concat(list)
    end

    def close
      @server.close
      @sockets.each { |socket| socket.close rescue nil } # rubocop:disable Style/RescueModifier
    end
  end

  # A throwaway PKI in a temporary directory, made once per process: a CA, a broker certificate from it for
  # 127.0.0.1 (an IP SAN) and localhost, a client certificate from it, and an unrelated CA with a broker
  # certificate of its own. EC keys: quick to make.
  module Certs
    module_function

    def dir
      @dir ||= make
    end

    def path(name)
      File.join(dir, name)
    end

    def server_context(cert: "server", client_ca: nil)
      context = OpenSSL::SSL::SSLContext.new
      context.cert = OpenSSL::X509::Certificate.new(File.read(path("#{cert}.pem")))
      context.key = OpenSSL::PKey.read(File.read(path("#{cert}-key.pem")))
      if client_ca
        store = OpenSSL::X509::Store.new
        store.add_file(path(client_ca))
        context.cert_store = store
        context.verify_mode = OpenSSL::SSL::VERIFY_PEER | OpenSSL::SSL::VERIFY_FAIL_IF_NO_PEER_CERT
      end
      context
    end

    def make
      require "tmpdir"
      dir = Dir.mktmpdir("gantry-ruby-certs-")
      Minitest.after_run { FileUtils.rm_rf(dir) }
      ca_key, ca = write(dir, "ca", authority("Gantry test CA"))
      write(dir, "server", leaf("broker", ca, ca_key, "IP:127.0.0.1,DNS:localhost", "serverAuth"))
      write(dir, "client", leaf("ruby client", ca, ca_key, "DNS:client.test", "clientAuth"))
      other_key, other = write(dir, "other-ca", authority("Some other CA"))
      write(dir, "other-server", leaf("other broker", other, other_key, "IP:127.0.0.1", "serverAuth"))
      write(dir, "elsewhere", leaf("a broker elsewhere", ca, ca_key, "DNS:elsewhere.test", "serverAuth"))
      dir
    end

    def write(dir, name, (key, cert))
      File.write(File.join(dir, "#{name}.pem"), cert.to_pem)
      File.write(File.join(dir, "#{name}-key.pem"), key.private_to_pem)
      [key, cert]
    end

    def authority(name)
      key = OpenSSL::PKey::EC.generate("prime256v1")
      cert = certificate(name, key, nil, key) do |extensions|
        [extensions.create_extension("basicConstraints", "CA:TRUE", true),
         extensions.create_extension("keyUsage", "keyCertSign,cRLSign", true)]
      end
      [key, cert]
    end

    def leaf(name, issuer, issuer_key, san, usage)
      key = OpenSSL::PKey::EC.generate("prime256v1")
      cert = certificate(name, key, issuer, issuer_key) do |extensions|
        [extensions.create_extension("basicConstraints", "CA:FALSE", true),
         extensions.create_extension("keyUsage", "digitalSignature", true),
         extensions.create_extension("extendedKeyUsage", usage),
         extensions.create_extension("subjectAltName", san)]
      end
      [key, cert]
    end

    def certificate(name, key, issuer, issuer_key)
      cert = OpenSSL::X509::Certificate.new
      cert.version = 2
      cert.serial = SecureRandom.random_number(1 << 63)
      cert.subject = OpenSSL::X509::Name.new([["CN", name]])
      cert.issuer = issuer ? issuer.subject : cert.subject
      cert.public_key = key
      cert.not_before = Time.now - 60
      cert.not_after = Time.now + 86_400
      extensions = OpenSSL::X509::ExtensionFactory.new
      extensions.subject_certificate = cert
      extensions.issuer_certificate = issuer || cert
      (yield(extensions) + [extensions.create_extension("subjectKeyIdentifier", "hash")]).each do |extension|
        cert.add_extension(extension)
      end
      cert.sign(issuer_key, "SHA256")
      cert
    end
  end
end
