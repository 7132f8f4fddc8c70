# frozen_string_literal: true

require "ipaddr"
require "openssl"

module Gantry
  # The TLS side of a gantrys:// connection: which CA to trust (`ca_file`, else the system's store), and the
  # client certificate to show (`cert_file` and `key_file`, for brokers that want mutual TLS). The broker's
  # certificate is checked (VERIFY_PEER) and so is its name: SNI and the handshake's hostname check for a DNS
  # name, post_connection_check for both names and IP addresses (an IP's certificate carries an IP SAN).
  #
  # The files are read at each connect, so certificates renewed on disk are picked up by the next reconnection.
  # Failures a retry cannot mend are Gantry::TLSError, worded with what to change.
  class TLS
    attr_reader :ca_file, :cert_file, :key_file

    # The key may be in cert_file itself (one PEM with both); else key_file is needed.
    def initialize(ca_file: nil, cert_file: nil, key_file: nil)
      @ca_file = ca_file && File.expand_path(ca_file) # read at each connect, whatever the directory is then
      @cert_file = cert_file && File.expand_path(cert_file)
      @key_file = key_file && File.expand_path(key_file)
      if key_file && !cert_file
        raise ArgumentError, "key_file: (GANTRY_KEY_FILE) is given without cert_file: (GANTRY_CERT_FILE)"
      end

      { "ca_file" => ca_file, "cert_file" => cert_file, "key_file" => key_file }.each do |option, path|
        next if path.nil? || File.file?(path) && File.readable?(path)

        raise ArgumentError, "cannot read #{option}: #{path} (#{ENV_NAMES[option]}): " \
                             "#{File.exist?(path) ? "not a readable file" : "no such file"}"
      end
    end

    ENV_NAMES = { "ca_file" => "GANTRY_CA_FILE", "cert_file" => "GANTRY_CERT_FILE",
                  "key_file" => "GANTRY_KEY_FILE" }.freeze
    private_constant :ENV_NAMES

    def self.ip?(host)
      IPAddr.new(host)
      true
    rescue IPAddr::Error
      false
    end

    # The SSL context for one connection to `host` (the files read now). The handshake checks a DNS name; an
    # IP address is checked after it (#connect), since OpenSSL's check needs the name sent as SNI.
    def context(host)
      context = OpenSSL::SSL::SSLContext.new
      context.set_params(verify_mode: OpenSSL::SSL::VERIFY_PEER, verify_hostname: !TLS.ip?(host),
                         cert_store: trust_store, min_version: OpenSSL::SSL::TLS1_2_VERSION)
      add_client_certificate(context) if @cert_file
      context
    end

    # Makes `tcp` (a connected socket) a verified TLS socket to `host`, within `timeout` seconds. Raises
    # TLSError when the broker's certificate or ours is refused, or the broker does not speak TLS;
    # ConnectionError when the connection just drops or the handshake takes too long. Closes `tcp` if it fails.
    def connect(tcp, host, port, timeout)
      ssl = OpenSSL::SSL::SSLSocket.new(tcp, context(host))
      ssl.sync_close = true
      ssl.sync = true # every write goes out at once (OpenSSL::Buffering would keep it)
      ssl.hostname = host unless TLS.ip?(host) # SNI, and the handshake's name check; RFC 6066: no IPs here
      handshake(ssl, tcp, host, port, timeout)
      ssl.post_connection_check(host) # names and IP addresses alike
      connected = true
      ssl
    rescue OpenSSL::SSL::SSLError => e
      raise error(e, host, port)
    ensure
      (ssl || tcp).close rescue nil unless connected # rubocop:disable Style/RescueModifier
    end

    # OpenSSL's words for a peer that does not speak TLS, and for the broker's alerts about our certificate.
    NOT_TLS = /wrong version number|packet length too long|http request|unknown protocol|record layer failure/i
    CERTIFICATE_ALERT = Regexp.new("alert (?:#{["handshake failure", "bad certificate", "certificate unknown",
                                                 "unknown ca", "access denied", "certificate expired",
                                                 "unsupported certificate", "certificate revoked"].join("|")})")
    private_constant :NOT_TLS, :CERTIFICATE_ALERT

    # The Gantry error for an exception of the TLS layer (in the handshake, or a later read: with TLS 1.3 the
    # broker refuses a client certificate, or its absence, after the client's side of the handshake is done).
    def error(exception, host, port)
      where = "#{host.include?(":") ? "[#{host}]" : host}:#{port}"
      message = exception.message.to_s
      reason = message[/certificate verify failed \(([^)]*)\)/, 1] || message.split(": ").last
      if message.match?(/unexpected eof/i)
        return ConnectionError.new("the broker at #{where} closed the connection during the TLS handshake " \
                                   "(is it serving TLS there? a plain broker is gantry://)")
      end

      TLSError.new(
        if message.include?("hostname mismatch") || message.match?(/hostname .* does not match/)
          "the broker's certificate is not for #{host}: connect by a name or IP address the certificate lists " \
            "(its subjectAltName), or give the broker a certificate for #{host}"
        elsif reason.match?(/\Acertificate (has expired|is not yet valid)/)
          "the broker's certificate #{reason.include?("expired") ? "has expired" : "is not valid yet"}: the " \
            "broker needs a current certificate (or this machine's clock is wrong)"
        elsif message.include?("certificate verify failed") && @ca_file
          "the broker's certificate is not trusted (#{reason}): the CA in ca_file #{@ca_file} did not sign it; " \
            "pass ca_file: (GANTRY_CA_FILE) the PEM bundle that did"
        elsif message.include?("certificate verify failed")
          "the broker's certificate is not trusted (#{reason}): pass ca_file: (GANTRY_CA_FILE), a PEM bundle " \
            "of the CA that signed it (without one, only the system's CAs are trusted)"
        elsif message.match?(NOT_TLS)
          "the broker at #{where} does not speak TLS (#{reason}): use gantry://#{where} for a plain broker, or " \
            "turn TLS on at the broker"
        elsif message.include?("alert certificate required") || (!@cert_file && message.match?(CERTIFICATE_ALERT))
          "the broker wants a client certificate (#{reason}): pass cert_file: and key_file: " \
            "(GANTRY_CERT_FILE, GANTRY_KEY_FILE)"
        elsif message.match?(CERTIFICATE_ALERT)
          "the broker refused the client certificate in cert_file #{@cert_file} (#{reason}): it must be signed " \
            "by a CA the broker trusts, be valid now, and be meant for clients"
        else
          "TLS with the broker at #{where} failed (#{message})"
        end
      )
    end

    def inspect
      "#<#{self.class}#{" ca_file=#{@ca_file}" if @ca_file}#{" cert_file=#{@cert_file}" if @cert_file}>"
    end

    private

    def trust_store
      store = OpenSSL::X509::Store.new
      if @ca_file
        begin
          store.add_file(@ca_file)
        rescue OpenSSL::X509::StoreError => e
          raise TLSError, "cannot use ca_file #{@ca_file} (GANTRY_CA_FILE) (#{e.message}): it must be a PEM " \
                          "bundle of CA certificates"
        end
      else
        store.set_default_paths
      end
      store
    end

    def add_client_certificate(context)
      certificates = OpenSSL::X509::Certificate.load_file(@cert_file)
      key = OpenSSL::PKey.read(File.read(@key_file || @cert_file))
      context.add_certificate(certificates.first, key, certificates.drop(1))
    rescue OpenSSL::OpenSSLError, ArgumentError, SystemCallError, IOError => e
      files = @key_file ? "cert_file #{@cert_file} and key_file #{@key_file}" : "cert_file #{@cert_file}"
      raise TLSError, "cannot use #{files} (#{e.message}): each must be PEM, and key_file the private key of " \
                      "cert_file's certificate#{" (give key_file: when the key is not in cert_file)" unless @key_file}"
    end

    def handshake(ssl, tcp, host, port, timeout)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      begin
        ssl.connect_nonblock
      rescue IO::WaitReadable, IO::WaitWritable => e
        left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        ready = left.positive? && IO.select(*(e.is_a?(IO::WaitReadable) ? [[tcp], nil] : [nil, [tcp]]), nil, left)
        unless ready
          raise ConnectionError, "no TLS handshake with the broker at #{host}:#{port} within #{timeout} s (is it " \
                                 "serving TLS there? a plain broker is gantry://)"
        end

        retry
      rescue SystemCallError, IOError => e
        raise ConnectionError, "the connection to #{host}:#{port} failed during the TLS handshake: #{e.message}"
      end
    end
  end
end
